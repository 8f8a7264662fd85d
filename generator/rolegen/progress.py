"""Progress of a wait, for people: one line rewritten in place on a terminal, plain lines every few seconds
otherwise (logs, CI, pipes). Owns nothing but the formatting and the pacing; the waiting is the caller's."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

PLAIN_EVERY = 5.0  # seconds between plain lines
LIVE_EVERY = 0.5  # seconds between rewrites of the live line


def size_text(nbytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


class WaitLine:
    """`update()` as often as you like; it prints only when it is time. `gap()` (bytes still to replay, None when
    unknown) is called only when a line is printed, since it may read the cluster."""

    def __init__(self, what: str, timeout: float, log: Callable[[str], None],
                 gap: Callable[[], int | None] | None = None, stream: TextIO | None = None) -> None:
        self.what, self.timeout, self.log, self.gap = what, timeout, log, gap
        self.stream = stream if stream is not None else sys.stdout
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.last = self.start
        self.shown = False

    def text(self, elapsed: float) -> str:
        parts = [f"   ... waiting for {self.what}: {elapsed:.0f}s of {self.timeout:.0f}s"]
        gap = self.gap() if self.gap is not None else None
        if gap is not None:
            parts.append(f"{size_text(gap)} to go")
        return ", ".join(parts)

    def update(self) -> None:
        now = time.monotonic()
        if now - self.last < (LIVE_EVERY if self.live else PLAIN_EVERY):
            return
        self.last = now
        if self.live:
            self.stream.write("\r\x1b[2K" + self.text(now - self.start))
            self.stream.flush()
            self.shown = True
        else:
            self.log(self.text(now - self.start))

    def close(self, outcome: str) -> None:
        """Ends the live line with `outcome` (plain mode: nothing more; the caller reports the result)."""
        if self.live and self.shown:
            self.stream.write(f"\r\x1b[2K   ... {self.what}: {outcome} after {time.monotonic() - self.start:.0f}s\n")
            self.stream.flush()


def watch(frame: Callable[[], str], every: float, stream: TextIO | None = None, count: int | None = None) -> None:
    """Print `frame()` every `every` seconds until Ctrl-C (KeyboardInterrupt propagates; the CLI exits 130):
    redrawn in place on a terminal, one frame after the other (each after a `---` header) otherwise."""
    out = stream if stream is not None else sys.stdout
    live = bool(getattr(out, "isatty", lambda: False)())
    shown = 0
    while count is None or shown < count:
        text = frame()
        head = f"every {every:g}s, {time.strftime('%H:%M:%S', time.gmtime())} UTC (Ctrl-C stops)"
        out.write(("\x1b[H\x1b[2J" if live else "--- ") + head + "\n" + text)
        out.flush()
        shown += 1
        if count is None or shown < count:
            time.sleep(every)

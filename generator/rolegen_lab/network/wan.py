"""WAN behaviour for the lab's tunnel proxies: what a link between two data centres adds to loopback. Latency
(with jitter, order kept), a bandwidth cap per direction shared by every connection over the link, and random
connection resets. Off by default; `rolegen lab wan` sets it.

`DelayedPump` moves one connection's bytes: per direction a reader stamps each chunk with the time it may
leave (now + latency +- jitter, never before the previous chunk: TCP keeps order) and a writer sends it then,
paced by the direction's `Throttle`.
"""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from rolegen.errors import RolegenError

CHUNK = 16384  # small chunks, so a bandwidth cap paces a stream instead of letting 64 KiB bursts through


@dataclass(frozen=True)
class WanSettings:
    latency_ms: float = 0.0  # one way, added to every chunk
    jitter_ms: float = 0.0  # +- around the latency (uniform)
    rate_mbit: float = 0.0  # per direction, shared by all connections; 0: uncapped
    reset_every_s: float = 0.0  # mean seconds between resets of every open connection (random); 0: never

    def __post_init__(self) -> None:
        bad = [k for k, v in asdict(self).items() if v < 0]
        if bad:
            raise RolegenError(f"WAN settings must not be negative: {', '.join(bad)}")
        if self.jitter_ms > self.latency_ms:
            raise RolegenError("WAN jitter larger than the latency would send chunks before they were sent",
                               hint="rolegen lab wan --latency-ms L --jitter-ms J with J <= L")

    @property
    def off(self) -> bool:
        return self == WanSettings()

    def delay(self, rng: random.Random) -> float:
        """Seconds one chunk spends on the link (before the bandwidth cap)."""
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.latency_ms + jitter) / 1000

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Throttle:
    """A bandwidth cap: `take(n)` returns once n bytes fit the rate (callers are served in turn)."""

    def __init__(self, rate_mbit: Callable[[], float]) -> None:
        self._rate = rate_mbit
        self._lock = threading.Lock()
        self._free_at = 0.0  # monotonic time the link has sent everything taken so far

    def take(self, nbytes: int) -> None:
        rate = self._rate()
        if rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._free_at = max(self._free_at, now) + nbytes * 8 / (rate * 1_000_000)
            wait = self._free_at - now
        if wait > 0:
            time.sleep(wait)


class DelayedPump:
    """Forwards between `a` (client) and `b` (upstream) with the link's settings read live; `done()` is called
    once both directions ended (after which both sockets are closed)."""

    def __init__(self, a: socket.socket, b: socket.socket, settings: Callable[[], WanSettings],
                 throttles: tuple[Throttle, Throttle], count: Callable[[int], None],
                 done: Callable[[], None], rng: random.Random | None = None,
                 flowing: Callable[[bool], bool] | None = None) -> None:
        """`flowing(to_upstream)`: False leaves that direction unread for now (a one-way cut,
        rolegen_lab.network.proxy)."""
        self._settings, self._count, self._done = settings, count, done
        self._flowing = flowing or (lambda _to_upstream: True)
        self._rng = rng or random.Random()
        self._socks = (a, b)
        self._left = 2
        self._lock = threading.Lock()
        for src, dst, throttle, to_upstream in ((a, b, throttles[0], True), (b, a, throttles[1], False)):
            chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()
            threading.Thread(target=self._read, args=(src, chunks, to_upstream), daemon=True).start()
            threading.Thread(target=self._write, args=(dst, chunks, throttle), daemon=True).start()

    def _read(self, src: socket.socket, chunks: queue.Queue[tuple[float, bytes]], to_upstream: bool) -> None:
        last = 0.0
        while True:
            if not self._flowing(to_upstream) and src.fileno() >= 0:  # closed meanwhile: recv says so below
                time.sleep(0.05)
                continue
            try:
                data = src.recv(CHUNK)
            except OSError:
                data = b""
            last = max(last, time.monotonic() + self._settings().delay(self._rng))
            chunks.put((last, data))
            if not data:
                return

    def _write(self, dst: socket.socket, chunks: queue.Queue[tuple[float, bytes]], throttle: Throttle) -> None:
        try:
            while True:
                due, data = chunks.get()
                if not data:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)  # the other side said EOF: pass it on, half-close
                    return
                time.sleep(max(0.0, due - time.monotonic()))
                throttle.take(len(data))
                dst.sendall(data)
                self._count(len(data))
        except OSError:
            for sock in self._socks:  # a broken leg breaks the connection, as TCP would
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        finally:
            with self._lock:
                self._left -= 1
                last = self._left == 0
            if last:
                for sock in self._socks:
                    with contextlib.suppress(OSError):
                        sock.close()
                self._done()

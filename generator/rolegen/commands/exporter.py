"""`rolegen exporter`: the pair's metrics, those `rolegen status -f prometheus` prints, served on `/metrics` for a
Prometheus server to scrape. The pair is read in the background every `interval` seconds and a scrape gets the
last reading: it never waits for the clusters.

What one read returns is handed in (`read`; the CLI builds it from rolegen.commands.status, since verbs do not
import each other, tests/test_structure.py): this module is the loop, the HTTP server and the exporter's own
metrics. A read that raises is counted and logged (once per distinct error), and the last good reading stays
served, marked stale (`rolegen_exporter_reading_stale`); the exporter never stops on it. SIGTERM stops it cleanly
(the verb returns: exit 0); Ctrl-C raises KeyboardInterrupt as anywhere else (the CLI's exit 130)."""

from __future__ import annotations

import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rolegen.errors import RolegenError, UsageError, ValidationFailed
from rolegen.prometheus import Family, exposition

# Not 9187: that is postgres_exporter's, which often runs beside Patroni.
DEFAULT_PORT = 9847
DEFAULT_LISTEN = f"0.0.0.0:{DEFAULT_PORT}"
DEFAULT_INTERVAL = 15.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Read = Callable[[], list[Family]]
Log = Callable[[str], None]


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every interface); port 0 takes any free port."""
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if not sep or not port.isdigit() or int(port) > 65535 or (":" in host and not bracketed):
        raise UsageError(f"--listen {text!r}: expected HOST:PORT",
                         hint=f"e.g. {DEFAULT_LISTEN}, 127.0.0.1:0 (any free port) or [::]:{DEFAULT_PORT}")
    return (host[1:-1] if bracketed else host) or "0.0.0.0", int(port)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationFailed):
        return f"{exc.message}: " + "; ".join(str(p) for p in exc.errors)
    if isinstance(exc, RolegenError):
        return exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Snapshot:
    """What the exporter knows at one instant; `metrics()` is a pure function of it."""

    families: tuple[Family, ...] | None  # the last good reading (None: no read succeeded yet)
    read_at: float | None  # Unix time the last good read finished
    duration: float | None  # seconds the last read took, good or not (None: none finished yet)
    reads: int
    errors: int
    failed: bool  # the last read raised: the reading served is an older one
    interval: float

    def self_families(self) -> list[Family]:
        reads = Family("rolegen_exporter_reads_total", "Reads of the pair the exporter finished, failed or not.",
                       "counter").add(self.reads)
        errors = Family("rolegen_exporter_read_errors_total", "Reads of the pair that failed (raised); the last "
                        "good reading stays served, marked stale.", "counter").add(self.errors)
        stale = Family("rolegen_exporter_reading_stale", "1 when the pair's metrics served are not from the last "
                       "read (it failed, or none succeeded yet).").add(self.failed or self.families is None)
        interval = Family("rolegen_exporter_read_interval_seconds", "Seconds between the starts of two reads "
                          "(--interval).").add(self.interval)
        duration = Family("rolegen_exporter_read_duration_seconds", "Seconds the last read of the pair took.")
        if self.duration is not None:
            duration.add(round(self.duration, 6))
        last = Family("rolegen_exporter_last_read_timestamp_seconds", "Unix time the last good read of the pair "
                      "finished: what the pair's metrics served are from.")
        if self.read_at is not None:
            last.add(round(self.read_at, 3))
        return [reads, errors, stale, interval, duration, last]

    def metrics(self) -> str:
        """The last reading and the exporter's own metrics, in the text format (families sorted by name)."""
        return exposition([*(self.families or ()), *self.self_families()])


class Exporter:
    """The last reading of the pair and the counters around it; `read_once` replaces it, `metrics` serves it."""

    def __init__(self, read: Read, interval: float = DEFAULT_INTERVAL, *, log: Log = lambda _: None,
                 clock: Callable[[], float] = time.time, timer: Callable[[], float] = time.monotonic) -> None:
        self._read, self._log, self._clock, self._timer = read, log, clock, timer
        self._lock = threading.Lock()
        self._state = Snapshot(None, None, None, 0, 0, False, interval)
        self._last_error: str | None = None  # logged once until it changes or a read succeeds

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._state

    def metrics(self) -> str:
        return self.snapshot().metrics()

    def read_once(self) -> bool:
        """One read of the pair; True when it succeeded. Never raises but KeyboardInterrupt/SystemExit."""
        started = self._timer()
        try:
            families = tuple(self._read())
        except Exception as exc:
            self._failed(exc, self._timer() - started)
            return False
        duration, finished = self._timer() - started, self._clock()
        with self._lock:
            s = self._state
            self._state = Snapshot(families, finished, duration, s.reads + 1, s.errors, False, s.interval)
            failures = s.errors
        if self._last_error is not None:
            self._log(f"read the pair again ({failures} failed reads so far)")
            self._last_error = None
        return True

    def _failed(self, exc: Exception, duration: float) -> None:
        with self._lock:
            s = self._state
            self._state = Snapshot(s.families, s.read_at, duration, s.reads + 1, s.errors + 1, True, s.interval)
        text = _describe(exc)
        if text != self._last_error:
            self._last_error = text
            self._log(f"error: reading the pair failed: {text}; serving the last good reading, marked stale")
            if not isinstance(exc, RolegenError):  # not one of rolegen's own: a bug's traceback helps
                self._log("".join(traceback.format_exception(exc)).rstrip())

    def loop(self, stop: threading.Event) -> None:
        """Read now, then every interval (from the start of one read to the start of the next) until `stop`."""
        while not stop.is_set():
            started = self._timer()
            self.read_once()
            stop.wait(max(0.0, self.snapshot().interval - (self._timer() - started)))


INDEX = b"rolegen exporter: /metrics (the pair, Prometheus text format), /healthz\n"


def _handler(exporter: Exporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "rolegen-exporter"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            kind, data = "text/plain; charset=utf-8", b"not found\n"
            if path == "/metrics":
                kind, data = CONTENT_TYPE, exporter.metrics().encode()
            elif path == "/healthz":
                data = b"ok\n"
            elif path == "/":
                data = INDEX
            self.send_response(200 if path in ("/metrics", "/healthz", "/") else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: a scrape every few seconds is not worth a log line."""

    return Handler


class _ThreadingHTTPServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def bind(exporter: Exporter, host: str, port: int) -> ThreadingHTTPServer:
    """The HTTP server of `exporter`, bound (not serving yet); an address in use is a RolegenError."""
    server_class = _ThreadingHTTPServer6 if ":" in host else ThreadingHTTPServer
    try:
        server = server_class((host, port), _handler(exporter))
    except OSError as exc:
        raise RolegenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                           hint="another process may hold the port: choose one with --listen HOST:PORT") from exc
    server.daemon_threads = True
    return server


@dataclass(frozen=True)
class ExporterResult:
    url: str
    reads: int
    errors: int

    def lines(self) -> list[str]:
        return [f"stopped serving {self.url}: {self.reads} reads of the pair, {self.errors} failed"]

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "reads": self.reads, "errors": self.errors}


@contextmanager
def _sigterm_noted() -> Iterator[list[int]]:
    """While inside, SIGTERM is noted in the list yielded (a handler touches no lock: it may run in the middle of
    the main thread's own use of one). Only the main thread may set handlers: elsewhere the list stays empty."""
    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: noted.append(signum))
    try:
        yield noted
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(read: Read, listen: str = DEFAULT_LISTEN, interval: float = DEFAULT_INTERVAL, *, log: Log = lambda _: None,
        check: Callable[[], object] | None = None, stop: threading.Event | None = None) -> ExporterResult:
    """Serve until SIGTERM (or `stop`; Ctrl-C propagates). `check` runs once first: a broken environments
    directory fails at start (exit 1) rather than as a read error on every interval."""
    host, port = parse_listen(listen)
    if interval <= 0:
        raise UsageError(f"--interval {interval:g}: must be positive")
    if check is not None:
        check()
    exporter = Exporter(read, interval, log=log)
    stop = stop or threading.Event()
    with _sigterm_noted() as terminated:  # before the line that says it serves: a SIGTERM after it stops cleanly
        server = bind(exporter, host, port)
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{server.server_address[1]}/metrics"
        threads = [threading.Thread(target=server.serve_forever, name="exporter-http", daemon=True),
                   threading.Thread(target=exporter.loop, args=(stop,), name="exporter-read", daemon=True)]
        for thread in threads:
            thread.start()
        log(f"serving {url}, reading the pair every {interval:g}s (SIGTERM or Ctrl-C stops)")
        try:
            # A timed wait: a signal may land on another thread, and Python runs the main thread's handlers (and
            # raises KeyboardInterrupt) only once that thread runs again.
            while not stop.wait(0.25) and not terminated:
                pass
            if terminated:
                log("SIGTERM: stopping")
        finally:
            stop.set()
            server.shutdown()
            server.server_close()
            threads[1].join(timeout=5)  # a read in flight ends on its own (kubectl's request timeout bounds it)
    final = exporter.snapshot()
    return ExporterResult(url, final.reads, final.errors)

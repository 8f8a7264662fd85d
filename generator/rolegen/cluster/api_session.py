"""A site's API at millisecond cost for the length of one role change: one `kubectl proxy` (or `oc proxy`) per
site, listening on a Unix socket in a directory only this user can enter, which rolegen calls over plain HTTP.

Why: every kubectl run costs 0.1-0.2 s of start-up, so a read, a guarded write and the lease check before it add
up to half a second in the switchover's write-unavailable window. The proxy is the same client binary, started
once, so it honours the kubeconfig exactly as kubectl does (contexts, `oc login` tokens, exec plugins, proxies);
what goes through it are the same API requests kubectl makes (GET, a merge-patch PATCH carrying the
resourceVersion, POST, DELETE), and their answers map to the same errors (`Cluster._error`'s classes).

Its lifetime is a `with opened(clusters):` block (the role verbs open one around the whole run); outside it, or
for a site whose proxy did not start, every call is a kubectl run as before. A proxy dies with the thread that
started it (PR_SET_PDEATHSIG), so a rolegen killed with SIGKILL leaves none behind. A proxy that died during a run
is noticed at the next call, which then runs kubectl: no call is lost, none is answered twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT = 5.0  # seconds for a proxy to say it serves; after that, that site's calls run kubectl
PREFIX = "rolegen-api-"

_sessions: dict[tuple[str, str], ApiSession] = {}
_lock = threading.Lock()


class Gone(Exception):
    """The proxy does not answer on its socket (it died): the call runs kubectl instead."""


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def status_object(self) -> dict[str, Any]:
        """The API's `Status` object of an error answer ({} when the body is not one: a proxy's own text)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def text(self) -> str:
        return str(self.status_object().get("message") or self.body.decode(errors="replace").strip())


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError as exc:
            sock.close()
            raise Gone(str(exc)) from None
        self.sock = sock


def _die_with_parent() -> Callable[[], None] | None:
    """preexec_fn: the child gets SIGKILL when the thread that started it ends (Linux); None elsewhere. The libc
    function is looked up here, before the fork: the child only calls it."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    set_pdeathsig = 1

    def call() -> None:
        prctl(set_pdeathsig, signal.SIGKILL)

    return call


class ApiSession:
    """One site's proxy: `request` is one HTTP call through it, `stream` a watch."""

    def __init__(self, command: list[str], directory: Path) -> None:
        self.directory = directory
        self.socket = str(directory / "api.sock")
        self.alive = True
        self._proc = subprocess.Popen(
            [*command, "proxy", "--unix-socket", self.socket], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent(),
            env=dict(os.environ),  # not client_env's GOGC=off: a proxy lives for the whole run
        )

    def ready(self, deadline: float) -> str | None:
        """Wait until the proxy serves (its first line); None when it does, else why not."""
        assert self._proc.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self._proc.stdout.readline()),  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        reader.join(max(0.0, deadline - time.monotonic()))
        if line and line[0].startswith("Starting to serve"):
            return None
        if line:  # its output ended: it is exiting
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=2)
        exited = self._proc.poll() is not None
        err = (self._proc.stderr.read() if exited and self._proc.stderr else "") or ""
        self.close()
        if err.strip():
            return err.strip().splitlines()[-1]
        return f"it exited with {self._proc.returncode}" if exited else "it did not start serving in time"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float,
                content_type: str = "application/json") -> Answer:
        """One request; socket.timeout (TimeoutError) when no answer within `timeout`, Gone when the proxy is."""
        if not self.alive or self._proc.poll() is not None:
            self.alive = False
            raise Gone("the proxy exited")
        conn = _UnixConnection(self.socket, timeout)
        try:
            data = None if body is None else json.dumps(body, sort_keys=True).encode()
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            answer = conn.getresponse()
            return Answer(answer.status, answer.read())
        except (ConnectionError, http.client.HTTPException) as exc:
            if self._proc.poll() is not None:
                self.alive = False
                raise Gone(str(exc)) from None
            raise
        finally:
            conn.close()

    def stream(self, path: str, each: Callable[[bytes], None], hold: Callable[[socket.socket], None]) -> None:
        """Read a watch at `path` line by line into `each` until it ends; `hold` gets its socket, which the owner
        shuts down to stop it. Errors end it quietly: a watch only wakes its reader, it never decides anything."""
        conn = _UnixConnection(self.socket, 5.0)
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            answer = conn.getresponse()
            if answer.status != 200 or conn.sock is None:
                return
            conn.sock.settimeout(None)
            hold(conn.sock)
            while line := answer.readline():
                each(line)
        except (OSError, Gone, http.client.HTTPException, ValueError):
            return
        finally:
            conn.close()

    def close(self) -> None:
        self.alive = False
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def session_of(key: tuple[str, str]) -> ApiSession | None:
    """The open session of the site `key` names ((kubeconfig, context) as Cluster.client keys it), if any."""
    with _lock:
        session = _sessions.get(key)
    return session if session is not None and session.alive else None


def _sweep(root: Path) -> None:
    """Directories left by runs that were killed (their pid is gone): removed."""
    for old in root.glob(f"{PREFIX}*"):
        pid = old.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class Site:
    """What opening a site's session needs: its key, its client command (binary, kubeconfig, context)."""

    key: tuple[str, str]
    command: list[str]
    name: str


@contextlib.contextmanager
def opened(sites: Iterable[Site], log: Callable[[str], None] = lambda _: None) -> Iterator[list[str]]:
    """Open a proxy for each site not open yet (started in this thread, so that they live as long as it does),
    yield the names of those that serve, close them at the end. A site whose proxy does not start is logged
    and keeps using kubectl runs."""
    root = Path(tempfile.gettempdir())
    _sweep(root)
    started: list[tuple[Site, ApiSession]] = []
    for site in {s.key: s for s in sites}.values():
        if session_of(site.key) is not None:
            continue
        directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
        try:
            started.append((site, ApiSession(site.command, directory)))
        except OSError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            log(f"   {site.name}: no API proxy ({exc}); each call runs the client")
    deadline = time.monotonic() + START_TIMEOUT
    serving: list[tuple[Site, ApiSession]] = []
    for site, session in started:
        problem = session.ready(deadline)
        if problem is None:
            serving.append((site, session))
        else:
            log(f"   {site.name}: no API proxy ({problem}); each call runs the client")
    with _lock:
        for site, session in serving:
            _sessions[site.key] = session
    try:
        yield [site.name for site, _ in serving]
    finally:
        with _lock:
            for site, session in serving:
                if _sessions.get(site.key) is session:
                    del _sessions[site.key]
        for _, session in started:
            session.close()

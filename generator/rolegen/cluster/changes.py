"""Being woken when a site changes: watches (the Kubernetes watch API, through the run's API proxy:
rolegen.cluster.api_session) on the objects a site's state is read from, so that a wait reads again within
milliseconds of Patroni's write instead of at its next poll.

A watch only wakes: every decision is still taken on a fresh read (a list, as without watches), never on what
a watch delivered, so a watch that lags, drops or ends unnoticed costs time, never safety: the waits keep
polling at their own pace as the fallback (`Changes.sleep`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from rolegen.cluster.api_session import ApiSession
from rolegen.cluster.kubectl import Cluster

RECONNECT = 0.2  # seconds between a watch that ended and its next start


@dataclass(frozen=True)
class Watched:
    """One site's objects to watch: its cluster, the label selector, the resources (kubectl's names)."""

    cluster: Cluster
    selector: str
    resources: tuple[str, ...] = ("configmaps", "pods")


class Changes:
    """Wakes `sleep` when any watched object changes. Started by `watching`; a site without an API proxy is
    simply not watched (its waits poll)."""

    def __init__(self) -> None:
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.events = 0  # lines received, for tests and traces

    def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, less when a change arrived since the last sleep (which is then consumed): a
        change that lands while the caller reads is never lost, it ends the next sleep at once."""
        self._changed.wait(seconds)
        self._changed.clear()

    def start(self, session: ApiSession, path: str) -> None:
        thread = threading.Thread(target=self._run, args=(session, path), name="watch", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _hold(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
        if self._stop.is_set():
            self._shut(sock)

    def _seen(self, _line: bytes) -> None:
        self.events += 1
        self._changed.set()

    def _run(self, session: ApiSession, path: str) -> None:
        while not self._stop.is_set() and session.alive:
            session.stream(path, self._seen, self._hold)
            self._stop.wait(RECONNECT)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                self._shut(sock)
        for thread in self._threads:
            thread.join(timeout=2)


def watch_path(site: Watched, resource: str) -> str:
    group = "/api/v1"
    query = urllib.parse.urlencode({"watch": "1", "labelSelector": site.selector})
    return f"{group}/namespaces/{urllib.parse.quote(site.cluster.namespace)}/{resource}?{query}"


@contextlib.contextmanager
def watching(sites: list[Watched]) -> Iterator[Changes | None]:
    """Watch each site that has an API proxy open; None when none has (the waits poll as before)."""
    changes = Changes()
    for site in sites:
        session = site.cluster.session()
        if session is None:
            continue
        for resource in site.resources:
            changes.start(session, watch_path(site, resource))
    if not changes._threads:
        yield None
        return
    try:
        yield changes
    finally:
        changes.stop()

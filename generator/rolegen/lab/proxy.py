"""A TCP proxy standing for `<release>-master` plus the TSC tunnel: it forwards to whichever member is the
site's leader, can cut the link (partition), counts the bytes that cross it, and can be routed elsewhere (an
impostor). As a tunnel it connects from `source`, the address the peer's connections arrive from (the lab's
`peer.cidrs`), so pg_hba tells the peer's connections from local ones as it does behind a real tunnel."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable

Address = tuple[str, int]


class TunnelProxy:
    """Listens on `listen`; each new connection goes to `target()` (None: no leader, refuse)."""

    def __init__(self, listen: Address, target: Callable[[], Address | None], source: str | None = None) -> None:
        self._target = target
        self._source = source
        self.route: Address | None = None  # set: new connections go there instead of the leader
        self._server = socket.create_server(listen, reuse_port=False)
        self._server.settimeout(0.2)
        self.address: Address = self._server.getsockname()[:2]
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._stop = threading.Event()
        self._partitioned = threading.Event()
        self.bytes_forwarded = 0
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"proxy-{self.address[1]}", daemon=True)
        self._accept_thread.start()

    # -- control ------------------------------------------------------------------------------------------
    def partition(self) -> None:
        """Cut the link: drop every open connection and refuse new ones until heal()."""
        self._partitioned.set()
        self._drop_all()

    def heal(self) -> None:
        self._partitioned.clear()

    def reroute(self, address: Address | None) -> None:
        """Send new connections to `address` (None: back to the leader); open ones are dropped."""
        self.route = address
        self._drop_all()

    @property
    def partitioned(self) -> bool:
        return self._partitioned.is_set()

    def reset_counter(self) -> int:
        with self._lock:
            count, self.bytes_forwarded = self.bytes_forwarded, 0
        return count

    def close(self) -> None:
        self._stop.set()
        self._accept_thread.join(timeout=2)
        self._server.close()
        self._drop_all()

    # -- forwarding ---------------------------------------------------------------------------------------
    def _drop_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            target = None if self.partitioned else (self.route or self._target())
            if target is None:
                client.close()
                continue
            try:
                source = (self._source, 0) if self._source else None
                upstream = socket.create_connection(target, timeout=2, source_address=source)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([a, b], [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
                    with self._lock:
                        self.bytes_forwarded += len(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._conns -= {a, b}
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()

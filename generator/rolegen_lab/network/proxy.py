"""A TCP proxy standing for `<release>-master` plus the TSC tunnel: it forwards to whichever member is the
site's leader, can cut the link (partition) and counts the bytes that cross it. As a tunnel it connects from
`source`, the address the peer's connections arrive from (the lab's `peer.cidrs`), so pg_hba tells the peer's
connections from local ones as it does behind a real tunnel; and it can behave like a WAN link
(rolegen_lab.network.wan: latency, jitter, a bandwidth cap, resets).

A cut is both ways (`partition`: connections dropped and refused) or one way (`one_way`): `requests` stops what
clients send (an open stream still delivers what the far end sends), `answers` stops what comes back (what
clients send still arrives and is acted on), open connections included. A one-way cut leaves that direction
unread: its bytes wait in the socket buffers, as unacknowledged TCP segments wait for a link to return, and
arrive on heal if their connection still exists (a client that gave up meanwhile has closed it). New connections
are still accepted: the TCP handshake is the lab's loopback, not the link."""

from __future__ import annotations

import contextlib
import random
import select
import socket
import threading
import time
from collections.abc import Callable

from rolegen.errors import RolegenError
from rolegen_lab.network.wan import DelayedPump, Throttle, WanSettings

Address = tuple[str, int]
ONE_WAY = ("requests", "answers")  # what a one-way cut stops: what clients send, or what comes back to them


class TunnelProxy:
    """Listens on `listen`; each new connection goes to `target()` (None: no leader, refuse)."""

    def __init__(self, listen: Address, target: Callable[[], Address | None], source: str | None = None) -> None:
        self._target = target
        self._source = source
        self._server: socket.socket | None = socket.create_server(listen, reuse_port=False)
        self._server.settimeout(0.2)
        self.address: Address = self._server.getsockname()[:2]
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._stop = threading.Event()
        self._partitioned = threading.Event()
        self._one_way: str | None = None
        self.bytes_forwarded = 0
        self.wan = WanSettings()
        self._wan_generation = 0  # bumped by set_wan: the reset thread of older settings stops
        self._throttles = (Throttle(lambda: self.wan.rate_mbit), Throttle(lambda: self.wan.rate_mbit))
        # Other ports of the same tunnel (a TSC carries several services): they share its fate, every cut,
        # heal and WAN setting applies to them too.
        self.companions: list[TunnelProxy] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"proxy-{self.address[1]}", daemon=True)
        self._accept_thread.start()

    # -- control ------------------------------------------------------------------------------------------
    def partition(self) -> None:
        """Cut the link: drop every open connection and refuse new ones until heal()."""
        self._partitioned.set()
        self._drop_all()
        for other in self.companions:
            other.partition()

    def one_way(self, direction: str) -> None:
        """Cut one direction only (ONE_WAY), open connections included, until heal()."""
        if direction not in ONE_WAY:
            raise RolegenError(f"unknown direction {direction!r}", hint=f"one of: {', '.join(ONE_WAY)}")
        self._one_way = direction
        self._partitioned.clear()
        for other in self.companions:
            other.one_way(direction)

    def heal(self) -> None:
        self._one_way = None
        self._partitioned.clear()
        for other in self.companions:
            other.heal()

    @property
    def cut_direction(self) -> str | None:
        """`both`, `requests`, `answers`, or None (the link works)."""
        return "both" if self.partitioned else self._one_way

    def set_wan(self, settings: WanSettings) -> None:
        """Link behaviour from now on. Open connections are dropped (they reconnect under the new settings, as
        after a link renegotiation): a connection's pump is chosen when it opens."""
        with self._lock:
            self.wan = settings
            self._wan_generation += 1
            generation = self._wan_generation
        self._drop_all()
        for other in self.companions:
            other.set_wan(settings)
        if settings.reset_every_s > 0:
            threading.Thread(target=self._resets, args=(generation,), name=f"resets-{self.address[1]}",
                             daemon=True).start()

    def _resets(self, generation: int) -> None:
        """Random resets: every open connection dropped at exponentially distributed intervals."""
        rng = random.Random()
        while not self._stop.wait(rng.expovariate(1 / self.wan.reset_every_s)):
            if generation != self._wan_generation:
                return
            self._drop_all()

    @property
    def partitioned(self) -> bool:
        return self._partitioned.is_set()

    def reset_counter(self) -> int:
        with self._lock:
            count, self.bytes_forwarded = self.bytes_forwarded, 0
        return count

    def close(self) -> None:
        for other in self.companions:
            other.close()
        self._stop.set()
        self._accept_thread.join(timeout=2)
        if self._server is not None:
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
            server = self._server
            if server is None:  # nothing listens (an API proxy refusing connections): wait to listen again
                time.sleep(0.05)
                continue
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._server is not server:  # closed on purpose, to refuse
                    continue
                return
            self._handle(client)

    def _flowing(self, to_upstream: bool) -> bool:
        """Whether one direction is read and forwarded now (a one-way cut stops one)."""
        return self._one_way != ("requests" if to_upstream else "answers")

    def _handle(self, client: socket.socket) -> None:
        """Forward one accepted connection (subclasses decide first whether it gets through)."""
        target = None if self.partitioned else self._target()
        if target is None:
            client.close()
            return
        try:
            source = (self._source, 0) if self._source else None
            upstream = socket.create_connection(target, timeout=2, source_address=source)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        for sock in (client, upstream):  # bytes go on as they come: no Nagle delay (40 ms with a delayed ACK)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._conns |= {client, upstream}
            wan = self.wan
        if wan.off:
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
        else:
            DelayedPump(client, upstream, lambda: self.wan, self._throttles, self._count,
                        lambda: self._forget(client, upstream), flowing=self._flowing)

    def _count(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_forwarded += nbytes

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            self._conns -= set(socks)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set():
                watched = [sock for sock in (a, b) if self._flowing(sock is a)]
                readable, _, _ = select.select(watched, [], [], 0.2)
                for sock in readable:
                    if not self._flowing(sock is a):  # cut while select() waited
                        continue
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

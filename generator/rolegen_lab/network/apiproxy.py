"""The operator's route to one site's kube-apiserver: what rolegen and the drills reach through the lab's
kubeconfig, while the site itself (Patroni in-cluster, the node agent, the controller manager) keeps its direct
route and sees nothing. It stands for a VPN, a jump host or the API load balancer in front of a real cluster.

Modes (`set_mode`): `ok` forwards bytes untouched (TLS end to end: kubectl sees the API server's own
certificate); `cut` refuses connections (nothing listens: ECONNREFUSED, as a VPN that is down); `slow` accepts
and then sends nothing, past kubectl's request timeout; `flaky` fails a fraction of new connections, half of them
reset (RST) and, when a TLS context is given, half answered `503 Service Unavailable` by the proxy itself (it
terminates TLS with the API server's serving certificate and offers only HTTP/1.1, so it can read one request
head and answer it); the other connections get through untouched.

It is also each party's route to the witness site (rolegen_lab.controlplane.witness), cut one way too
(rolegen_lab.network.proxy's `one_way`): `requests` holds back what clients send; `answers`, given `upstream_tls`
(a client context for the API server), lets writes through and holds back their answers
(rolegen_lab.network.httprelay); on connections open when a one-way cut begins, that direction stops.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import ssl
import struct
import threading

from rolegen.errors import RolegenError
from rolegen_lab.network.httprelay import relay
from rolegen_lab.network.proxy import Address, TunnelProxy

MODES = ("ok", "cut", "slow", "flaky")
FLAKY_RESET_EVERY = 0.5  # seconds, on average
STATUS_503 = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "ServiceUnavailable",
                         "message": "the lab's API proxy failed this request (rolegen lab api-flaky)",
                         "code": 503}).encode()


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER 0): the client reads 'connection reset by peer'."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class ApiProxy(TunnelProxy):
    """Forwards `listen` to `upstream` (the API server) in the current mode; `tls` (a server context with the
    API server's certificate) enables the 503 answers of `flaky`, and with `upstream_tls` the `answers` cut."""

    def __init__(self, listen: Address, upstream: Address, tls: ssl.SSLContext | None = None,
                 rng: random.Random | None = None, upstream_tls: ssl.SSLContext | None = None) -> None:
        super().__init__(listen, lambda: upstream)
        self.mode, self.rate = "ok", 0.0
        self.upstream_up = True
        self.dark = False  # the API server is down and the route drops packets: accepted, never answered
        self._tls, self._rng, self._upstream_tls = tls, rng or random.Random(), upstream_tls
        self._stalled: set[socket.socket] = set()
        self.failed = {"reset": 0, "503": 0}  # what `flaky` did, for tests and `lab status`

    @property
    def url(self) -> str:
        return "https://{}:{}".format(*self.address)

    def set_mode(self, mode: str, rate: float = 0.5) -> None:
        if mode not in MODES:
            raise RolegenError(f"unknown API proxy mode {mode!r}", hint=f"modes: {', '.join(MODES)}")
        if mode == "flaky" and not 0 < rate <= 1:
            raise RolegenError(f"failure rate {rate} outside (0, 1]", hint="e.g. --rate 0.5")
        self.mode, self.rate = mode, rate if mode == "flaky" else 0.0
        self._release_stalled()
        if mode != "ok":
            # A client that keeps its connection open (rolegen's API proxy, Patroni's watch) meets the new route
            # too, as it would: the route change breaks what was open, and it reconnects into the fault.
            self._drop_all()
        if mode == "flaky":
            threading.Thread(target=self._flaky_resets, name=f"flaky-{self.address[1]}", daemon=True).start()
        self._relisten()

    def _flaky_resets(self) -> None:
        """While `flaky`: connections kept open are reset now and then too (each tick, about every
        FLAKY_RESET_EVERY s, those already open at the previous one), so a client that keeps one open fails at
        random as one that connects per call does; a connection made for one call is left to the per-connection
        draw."""
        rng, seen = random.Random(), set[socket.socket]()
        while not self._stop.wait(rng.expovariate(1 / FLAKY_RESET_EVERY)):
            if self.mode != "flaky":
                return
            with self._lock:
                now = set(self._conns)
                old, self._conns = now & seen, now - seen
            seen = now - old
            for conn in old:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def _release_stalled(self) -> None:
        with self._lock:
            stalled, self._stalled = self._stalled, set()
        for sock in stalled:  # whatever was held in `slow` (or dark) times out now, as it would have
            _reset(sock)

    def set_upstream(self, up: bool, dark: bool = False) -> None:
        """The API server behind the proxy stopped (site loss) or runs again: while it is down the proxy refuses
        connections too, as the operator's route to a stopped API server does; `dark`: it accepts them and
        answers nothing instead (a data centre gone dark behind a route that drops packets: each request times
        out, where a refusal fails at once)."""
        was_dark, self.upstream_up, self.dark = self.dark, up, dark and not up
        if was_dark and not self.dark and self.mode != "slow":
            self._release_stalled()
        self._relisten()

    def _relisten(self) -> None:
        if self.mode == "cut" or not (self.upstream_up or self.dark):
            self._stop_listening()
            self._drop_all()  # a dead route breaks open connections too
        else:
            self._listen()

    def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)  # stops listening now, even while accept() polls it
            server.close()

    def _listen(self) -> None:
        if self._server is None:
            server = socket.create_server(self.address)  # the same port again (SO_REUSEADDR)
            server.settimeout(0.2)
            self._server = server

    def _relay_flowing(self, to_upstream: bool, wrote: bool) -> bool:
        if to_upstream:
            return self._one_way != "requests"
        return not (wrote and self._one_way == "answers")

    def _track(self, socks: set[socket.socket], opened: bool) -> None:
        with self._lock:
            self._conns = self._conns | socks if opened else self._conns - socks

    def _handle(self, client: socket.socket) -> None:
        if self.mode == "slow" or self.dark:
            with self._lock:
                self._stalled.add(client)  # accepted; nothing is ever read or answered
            return
        if self.mode == "flaky" and self._rng.random() < self.rate:
            if self._tls is not None and self._rng.random() < 0.5:
                self.failed["503"] += 1
                threading.Thread(target=self._answer_503, args=(client,), daemon=True).start()
            else:
                self.failed["reset"] += 1
                _reset(client)
            return
        if self._one_way == "answers" and self._tls is not None and self._upstream_tls is not None:
            upstream = self._target()
            assert upstream is not None
            threading.Thread(target=relay, args=(client, upstream, self._tls, self._upstream_tls, self._relay_flowing,
                                                 self._track, self._stop), daemon=True).start()
            return
        super()._handle(client)

    def _answer_503(self, client: socket.socket) -> None:
        assert self._tls is not None
        try:
            client.settimeout(5)
            with self._tls.wrap_socket(client, server_side=True) as conn:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    data = conn.recv(4096)
                    if not data:
                        return
                    head += data
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(STATUS_503), STATUS_503))
        except (OSError, ssl.SSLError):
            pass
        finally:
            client.close()

    def close(self) -> None:
        with self._lock:
            stalled, self._stalled = self._stalled, set()
        for sock in stalled:
            sock.close()
        super().close()


def server_context(certificate: str, key: str) -> ssl.SSLContext:
    """TLS as the API server presents it (its serving certificate), HTTP/1.1 only: what `flaky`'s 503s use."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certificate, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx

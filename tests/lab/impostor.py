"""An impostor on the tunnel: something that answers where the peer should, speaks PostgreSQL's SSL negotiation,
and presents a certificate from a CA the pair does not trust (`rerouted` sends a lab tunnel's connections to it).

It never gets further than the TLS handshake: a client with `sslmode=verify-full` (or verify-ca) aborts there.
`handshakes` counts the clients that asked for TLS; `refused` those that broke off the handshake.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

from rolegen_lab.controlplane.pki import tls_secrets
from rolegen_lab.network.proxy import Address, TunnelProxy

SSL_REQUEST = 80877103  # PostgreSQL's SSLRequest code (protocol 1234.5679)


@contextlib.contextmanager
def rerouted(proxy: TunnelProxy, address: Address) -> Iterator[None]:
    """New connections through `proxy` go to `address` instead of the site's leader while the block runs; open
    ones are dropped on the way in and on the way out (their clients reconnect: to `address`, then to the leader
    again). The proxy asks its target once per accepted connection, so swapping it is all a reroute takes."""
    leader = proxy._target
    proxy._target = lambda: address
    proxy._drop_all()
    try:
        yield
    finally:
        proxy._target = leader
        proxy._drop_all()


class Impostor:
    def __init__(self, directory: Path, names: tuple[str, ...]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        data = tls_secrets("rolegen-lab-impostor-ca", {"impostor": names})["impostor"]
        (directory / "tls.crt").write_text(data["tls.crt"])
        (directory / "tls.key").write_text(data["tls.key"])
        (directory / "tls.key").chmod(0o600)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.address: Address = self._server.getsockname()[:2]
        self.handshakes = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="impostor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(client,), daemon=True).start()

    def _answer(self, client: socket.socket) -> None:
        with contextlib.closing(client):
            client.settimeout(5)
            try:
                head = client.recv(8, socket.MSG_WAITALL)
                if len(head) != 8 or struct.unpack("!ii", head) != (8, SSL_REQUEST):
                    return  # plaintext startup: an impostor has nothing to say to it either
                client.sendall(b"S")
                with self._lock:
                    self.handshakes += 1
                with self._context.wrap_socket(client, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, ConnectionError):
                with self._lock:
                    self.refused += 1
            except OSError:
                return

"""An API route's `answers` cut (rolegen_lab.network.apiproxy): a write reaches the API server and is applied, and
its answer is lost.

Dropping every byte the API server sends would never let a write out: kubectl GETs an object before it PATCHes
it, and that GET would go unanswered. So for a connection opened during the cut the route terminates the
client's TLS with the API server's own serving certificate (HTTP/1.1 only, so requests are read one by one),
connects on over TLS with the lab's admin certificate (every route's identity in the lab), and follows the
client's request heads: the reads before the connection's first write are answered; from that write on, what the
API server sends is left unread (rolegen_lab.network.proxy's one-way cut) until the cut heals. The client waits
for its answer until its own timeout, as on a link that failed on the way back while the write was in flight.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Callable

Address = tuple[str, int]
READS = (b"GET", b"HEAD", b"OPTIONS")
MAX_HEAD = 65536


class RequestHeads:
    """The HTTP/1.1 requests one client sent so far (heads read, bodies skipped by Content-Length): `wrote` once
    one was not a read, or the stream is not requests as kubectl sends them (then the worst is assumed)."""

    def __init__(self) -> None:
        self.wrote = False
        self._head = b""
        self._body = 0

    def feed(self, data: bytes) -> None:
        at = 0
        while at < len(data) and not self.wrote:
            if self._body:
                step = min(self._body, len(data) - at)
                self._body -= step
                at += step
                continue
            pending = self._head + data[at:]
            end = pending.find(b"\r\n\r\n")
            if end < 0:
                self._head = pending
                self.wrote = len(pending) > MAX_HEAD
                return
            at += end + 4 - len(self._head)
            self._head = b""
            self._request(pending[:end])

    def _request(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        length = fields.get(b"content-length", b"0")
        chunked = b"chunked" in fields.get(b"transfer-encoding", b"").lower()
        self.wrote = lines[0].split(b" ", 1)[0] not in READS or chunked or not length.isdigit()
        self._body = int(length) if length.isdigit() else 0


def relay(client: socket.socket, upstream: Address, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext,
          flowing: Callable[[bool, bool], bool], track: Callable[[set[socket.socket], bool], None],
          stop: threading.Event) -> None:
    """Serve one client connection until either side closes or `stop`. `flowing(to_upstream, wrote)`: whether
    that direction is read and forwarded now (`wrote`: the client sent a write on this connection; a direction
    not flowing waits unread, as in rolegen_lab.network.proxy); `track(sockets, open)` registers the open sockets
    with the route (a route cut drops them) and forgets them at the end."""
    opened: list[socket.socket] = [client]
    try:
        client.settimeout(10)
        down = server_tls.wrap_socket(client, server_side=True)
        opened.append(down)
        raw = socket.create_connection(upstream, timeout=5)
        opened.append(raw)
        up = client_tls.wrap_socket(raw, server_hostname=upstream[0])
        opened.append(up)
        for sock in (down, up):
            sock.settimeout(None)
        track({down, up}, True)
        heads = RequestHeads()
        peers = {down: up, up: down}
        while not stop.is_set():
            watched = [sock for sock in (down, up) if flowing(sock is down, heads.wrote)]
            # TLS may hold a decrypted record already read from the socket: select() would not report it.
            ready = [sock for sock in watched if sock.pending()] or select.select(watched, [], [], 0.2)[0]
            for sock in ready:
                if not flowing(sock is down, heads.wrote):  # cut while select() waited
                    continue
                data = sock.recv(65536)
                if not data:
                    return
                if sock is down:
                    heads.feed(data)  # before sending on: the answer to a write is never read ahead of its head
                peers[sock].sendall(data)
    except (OSError, ValueError):  # ssl.SSLError is an OSError; ValueError: a socket closed under select()
        return
    finally:
        track(set(opened), False)
        for each in reversed(opened):
            with contextlib.suppress(OSError):
                each.close()

"""The lab's API client keeps one connection alive per thread, and sends once more on a new one when the server
closed the kept one (as an API server does with idle connections)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from rolegen_lab.controlplane.apiclient import ApiError, KubeApi


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the server closes
    connections: ClassVar[list[int]] = []
    close_after_reply = False

    def setup(self) -> None:
        super().setup()
        Handler.connections.append(self.client_address[1])

    def do_GET(self) -> None:
        status, body = (404, b"{}") if self.path.endswith("/missing") else (200, b'{"items": []}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if Handler.close_after_reply:
            self.close_connection = True  # without saying so: the client finds out on its next request

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    Handler.connections, Handler.close_after_reply = [], False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_requests_of_one_thread_share_one_connection(server: ThreadingHTTPServer) -> None:
    api = KubeApi(f"http://127.0.0.1:{server.server_address[1]}", "ns")
    try:
        for _ in range(5):
            assert api.list("pods") == []
        assert api.get("pods", "missing") is None  # an HTTP error keeps the connection too
        with pytest.raises(ApiError) as caught:
            api.request("GET", "/api/v1/namespaces/ns/pods/missing")
        assert caught.value.status == 404
        assert len(Handler.connections) == 1
    finally:
        api.close()


def test_a_kept_connection_the_server_closed_is_replaced_once(server: ThreadingHTTPServer) -> None:
    Handler.close_after_reply = True
    api = KubeApi(f"http://127.0.0.1:{server.server_address[1]}", "ns")
    try:
        assert api.list("pods") == []
        assert api.list("pods") == []  # the kept connection is dead: sent again on a new one
        assert len(Handler.connections) == 2
    finally:
        api.close()


def test_a_server_that_is_down_is_an_error_at_once(server: ThreadingHTTPServer) -> None:
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    api = KubeApi(f"http://127.0.0.1:{port}", "ns")
    with pytest.raises(OSError):
        api.list("pods")
    api.close()

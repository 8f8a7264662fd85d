from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from rolegen.lab.proxy import Address, TunnelProxy


@pytest.fixture
def echo() -> Iterator[Address]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[:2]
    stop.set()
    server.close()
    thread.join(timeout=2)


def _roundtrip(address: Address, payload: bytes) -> bytes:
    with socket.create_connection(address, timeout=2) as conn:
        conn.sendall(payload)
        return conn.recv(4096)


def test_forwards_to_the_current_target_and_counts_bytes(echo: Address) -> None:
    proxy = TunnelProxy(("127.0.0.1", 0), lambda: echo)
    try:
        assert _roundtrip(proxy.address, b"hello") == b"hello"
        deadline = time.monotonic() + 2
        while proxy.bytes_forwarded < 10 and time.monotonic() < deadline:
            time.sleep(0.01)  # the reply's bytes are counted right after they are sent on
        assert proxy.reset_counter() == 10  # 5 bytes each way
        assert proxy.bytes_forwarded == 0
    finally:
        proxy.close()


def test_no_leader_means_connections_are_refused(echo: Address) -> None:
    proxy = TunnelProxy(("127.0.0.1", 0), lambda: None)
    try:
        with socket.create_connection(proxy.address, timeout=2) as conn:
            assert conn.recv(10) == b""  # closed at once: nothing to forward to
    finally:
        proxy.close()


def test_partition_cuts_open_connections_and_heal_restores(echo: Address) -> None:
    proxy = TunnelProxy(("127.0.0.1", 0), lambda: echo)
    try:
        conn = socket.create_connection(proxy.address, timeout=2)
        conn.sendall(b"x")
        assert conn.recv(10) == b"x"
        proxy.partition()
        with pytest.raises(OSError):
            conn.sendall(b"y" * 100000)
            if conn.recv(10) == b"":
                raise ConnectionResetError
        conn.close()
        with socket.create_connection(proxy.address, timeout=2) as refused:
            assert refused.recv(10) == b""
        proxy.heal()
        assert _roundtrip(proxy.address, b"back") == b"back"
    finally:
        proxy.close()

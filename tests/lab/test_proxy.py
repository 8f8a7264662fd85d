"""The lab's proxies without a lab (a plain echo server): the tunnel/master proxy, the operator's API route
(cut, slow, flaky) and the tunnel's WAN settings."""

from __future__ import annotations

import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolegen.errors import RolegenError
from rolegen_lab.network.apiproxy import ApiProxy, server_context
from rolegen_lab.network.proxy import Address, TunnelProxy
from rolegen_lab.network.wan import WanSettings


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


# -- the operator's route to an API server (rolegen_lab.network.apiproxy) ----------------------------------------------
def test_api_cut_refuses_connections_and_heal_listens_again_on_the_same_port(echo: Address) -> None:
    proxy = ApiProxy(("127.0.0.1", 0), echo)
    try:
        address = proxy.address
        proxy.set_mode("cut")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=2)
        proxy.set_mode("ok")
        assert proxy.address == address
        assert _roundtrip(address, b"back") == b"back"
    finally:
        proxy.close()


def test_api_slow_accepts_and_never_answers_until_healed(echo: Address) -> None:
    proxy = ApiProxy(("127.0.0.1", 0), echo)
    try:
        proxy.set_mode("slow")
        stalled = socket.create_connection(proxy.address, timeout=0.5)  # accepted: not refused
        stalled.sendall(b"hello")
        with pytest.raises(TimeoutError):
            stalled.recv(10)
        proxy.set_mode("ok")  # what was held fails now, as a request timing out would
        with pytest.raises(OSError):
            if stalled.recv(10) == b"":
                raise ConnectionResetError
        stalled.close()
        assert _roundtrip(proxy.address, b"again") == b"again"
    finally:
        proxy.close()


def test_api_flaky_resets_a_fraction_of_connections_and_passes_the_rest(echo: Address) -> None:
    proxy = ApiProxy(("127.0.0.1", 0), echo, rng=random.Random(7))
    try:
        proxy.set_mode("flaky", rate=0.5)
        outcomes = []
        for _ in range(30):
            try:
                outcomes.append(_roundtrip(proxy.address, b"x") == b"x")
            except ConnectionResetError:
                outcomes.append(False)
        assert 5 <= outcomes.count(False) <= 25, outcomes
        assert proxy.failed["reset"] == outcomes.count(False) and proxy.failed["503"] == 0  # no TLS: resets only
    finally:
        proxy.close()


def test_api_flaky_with_tls_answers_some_requests_with_503(echo: Address, tmp_path: Path) -> None:
    from rolegen_lab.controlplane import pki

    keys = pki.generate(tmp_path / "pki", "gold")
    proxy = ApiProxy(("127.0.0.1", 0), echo, server_context(str(keys.serving_crt), str(keys.serving_key)),
                     rng=random.Random(3))
    client = ssl.create_default_context(cafile=str(keys.ca_crt))
    try:
        proxy.set_mode("flaky", rate=1.0)
        statuses = []
        for _ in range(12):
            try:
                # The TLS socket wraps an unconnected one, then connects inside the `with`: a reset must close it
                # (it owns the descriptor), never leave it to the garbage collector (a ResourceWarning whenever it
                # runs). Wrapping a connected socket the proxy had already reset raised inside wrap_socket (its
                # getpeername), after it took the descriptor and before it returned: nothing could close it.
                with client.wrap_socket(socket.socket(socket.AF_INET, socket.SOCK_STREAM),
                                        server_hostname="127.0.0.1") as conn:
                    conn.settimeout(5)
                    conn.connect(proxy.address)
                    conn.sendall(b"GET /api/v1/namespaces/gold/pods HTTP/1.1\r\nHost: gold\r\n\r\n")
                    statuses.append(conn.recv(4096).split(b"\r\n")[0].decode())
            except (ConnectionResetError, ssl.SSLError):
                statuses.append("reset")
        assert "HTTP/1.1 503 Service Unavailable" in statuses and "reset" in statuses, statuses
        assert set(statuses) == {"HTTP/1.1 503 Service Unavailable", "reset"}  # rate 1: nothing gets through
    finally:
        proxy.close()


def test_unknown_api_mode_and_bad_rate_are_refused(echo: Address) -> None:
    proxy = ApiProxy(("127.0.0.1", 0), echo)
    try:
        with pytest.raises(RolegenError, match="unknown API proxy mode"):
            proxy.set_mode("down")
        with pytest.raises(RolegenError, match="outside"):
            proxy.set_mode("flaky", rate=1.5)
        assert proxy.mode == "ok"
    finally:
        proxy.close()


# -- WAN settings on the tunnel (rolegen_lab.network.wan) ----------------------------------------------------------
def _timed_roundtrip(address: Address, payload: bytes) -> float:
    started = time.monotonic()
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(payload)
        got = b""
        while len(got) < len(payload):
            data = conn.recv(65536)
            assert data, "connection closed early"
            got += data
    assert got == payload
    return time.monotonic() - started


def test_wan_latency_delays_each_direction_and_off_restores_loopback(echo: Address) -> None:
    proxy = TunnelProxy(("127.0.0.1", 0), lambda: echo)
    try:
        assert _timed_roundtrip(proxy.address, b"ping") < 0.15
        proxy.set_wan(WanSettings(latency_ms=150))
        assert 0.3 <= _timed_roundtrip(proxy.address, b"ping") < 1.5  # 150 ms there, 150 ms back
        proxy.set_wan(WanSettings())
        assert _timed_roundtrip(proxy.address, b"ping") < 0.15
    finally:
        proxy.close()


def test_wan_jitter_keeps_the_byte_order(echo: Address) -> None:
    proxy = TunnelProxy(("127.0.0.1", 0), lambda: echo)
    try:
        proxy.set_wan(WanSettings(latency_ms=20, jitter_ms=20))
        with socket.create_connection(proxy.address, timeout=10) as conn:
            expected = b"".join(b"%03d" % i for i in range(100))
            for i in range(100):
                conn.sendall(b"%03d" % i)
                time.sleep(0.002)
            got = b""
            while len(got) < len(expected):
                got += conn.recv(4096)
        assert got == expected
    finally:
        proxy.close()


def test_wan_rate_caps_the_bandwidth(echo: Address) -> None:
    proxy = TunnelProxy(("127.0.0.1", 0), lambda: echo)
    try:
        assert _timed_roundtrip(proxy.address, b"x" * 65536) < 0.2
        proxy.set_wan(WanSettings(rate_mbit=1))
        # 64 KiB at 1 Mbit/s: 0.52 s one way (the echo overlaps the way back)
        assert 0.5 <= _timed_roundtrip(proxy.address, b"x" * 65536) < 3
    finally:
        proxy.close()


def test_wan_resets_drop_open_connections_at_random(echo: Address) -> None:
    proxy = TunnelProxy(("127.0.0.1", 0), lambda: echo)
    try:
        proxy.set_wan(WanSettings(reset_every_s=0.2))
        conn = socket.create_connection(proxy.address, timeout=5)
        dropped = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not dropped:
            try:
                conn.sendall(b"x")
                dropped = conn.recv(10) == b""
            except OSError:
                dropped = True
            time.sleep(0.05)
        conn.close()
        assert dropped, "no reset within 5 s at a mean of 0.2 s"
        proxy.set_wan(WanSettings())
        with socket.create_connection(proxy.address, timeout=5) as steady:
            for _ in range(10):
                steady.sendall(b"y")
                assert steady.recv(10) == b"y"
                time.sleep(0.05)
    finally:
        proxy.close()


def test_wan_settings_are_validated() -> None:
    with pytest.raises(RolegenError, match="negative"):
        WanSettings(latency_ms=-1)
    with pytest.raises(RolegenError, match="jitter"):
        WanSettings(latency_ms=5, jitter_ms=10)
    assert WanSettings().off and not WanSettings(rate_mbit=100).off


def test_api_proxy_refuses_while_its_api_server_is_down_as_the_direct_route_did(echo: Address) -> None:
    # A lost site's API must look the same through the proxy as without it: refused, not accepted-then-closed.
    proxy = ApiProxy(("127.0.0.1", 0), echo)
    try:
        proxy.set_upstream(False)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(proxy.address, timeout=2)
        proxy.set_mode("slow")  # an operator-side fault set meanwhile does not make a dead API answer
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(proxy.address, timeout=2)
        proxy.set_mode("ok")
        proxy.set_upstream(True)
        assert _roundtrip(proxy.address, b"up") == b"up"
    finally:
        proxy.close()


def test_a_dark_route_to_a_down_api_accepts_and_never_answers_until_the_api_is_back(echo: Address) -> None:
    """`lab lose --dark`: a data centre gone dark behind a route that drops packets. Its API's requests time out
    (the standby guard's failover must not spend kubectl's 20 s on each), where a plain loss refuses them."""
    proxy = ApiProxy(("127.0.0.1", 0), echo)
    try:
        proxy.set_upstream(False, dark=True)
        stalled = socket.create_connection(proxy.address, timeout=0.5)  # accepted: not refused
        stalled.sendall(b"hello")
        with pytest.raises(TimeoutError):
            stalled.recv(10)
        proxy.set_upstream(True)  # the site is back: what was held fails, new connections get through
        with pytest.raises(OSError):
            if stalled.recv(10) == b"":
                raise ConnectionResetError
        stalled.close()
        assert _roundtrip(proxy.address, b"back") == b"back"
    finally:
        proxy.close()


# -- a returning site whose tunnel comes up after its members (LabFaults.restore(tunnel_after=S)) -----------------
class StandInSite:
    """What LabFaults.restore touches of a LabSite: its tunnel proxy and its lost/restored state."""

    def __init__(self, env: str, tunnel: TunnelProxy, lost: bool = False) -> None:
        self.env, self.tunnel, self.lost = env, tunnel, lost
        self.members_started_at: float | None = None

    def restore_api(self) -> None:
        pass

    def resume_members(self, tunnel: bool = True) -> None:
        self.members_started_at = time.monotonic()
        self.lost = False
        if tunnel:
            self.tunnel.heal()


def test_restore_with_tunnel_after_starts_members_while_the_tunnel_stays_cut_both_ways(echo: Address) -> None:
    from rolegen_lab.faults import LabFaults

    faults = LabFaults()
    gold = StandInSite("gold", TunnelProxy(("127.0.0.1", 0), lambda: echo), lost=True)
    golddr = StandInSite("golddr", TunnelProxy(("127.0.0.1", 0), lambda: echo))
    gold.tunnel.partition()  # what the site loss did
    faults.sites = {"gold": gold, "golddr": golddr}  # type: ignore[dict-item]
    try:
        assert faults.restore("gold", tunnel_after=0.6) == "gold"
        assert gold.members_started_at is not None and not gold.lost
        # the returning site's members cannot reach their peer, nor the peer them
        assert gold.tunnel.partitioned and golddr.tunnel.partitioned
        with socket.create_connection(golddr.tunnel.address, timeout=2) as refused:
            assert refused.recv(10) == b""  # closed at once: nothing crosses
        deadline = time.monotonic() + 3
        while golddr.tunnel.partitioned and time.monotonic() < deadline:
            time.sleep(0.05)
        healed_after = time.monotonic() - gold.members_started_at
        assert not gold.tunnel.partitioned and not golddr.tunnel.partitioned
        assert 0.5 <= healed_after < 2, healed_after
        assert _roundtrip(golddr.tunnel.address, b"back") == b"back"
    finally:
        gold.tunnel.close()
        golddr.tunnel.close()


def test_a_manual_cut_overrides_a_pending_late_tunnel(echo: Address) -> None:
    from rolegen_lab.faults import LabFaults

    faults = LabFaults()
    gold = StandInSite("gold", TunnelProxy(("127.0.0.1", 0), lambda: echo), lost=True)
    faults.sites = {"gold": gold}  # type: ignore[dict-item]
    try:
        faults.restore("gold", tunnel_after=0.3)
        faults.cut("gold")
        time.sleep(0.6)
        assert gold.tunnel.partitioned  # the timer did not heal what the operator cut afterwards
    finally:
        gold.tunnel.close()


# -- a link cut one way (TunnelProxy.one_way; an API route's answers cut: rolegen_lab.network.httprelay) ----------
class Ticker:
    """A server that sends b"t" every 50 ms on each connection and records what it receives (optionally over TLS):
    a stream that delivers unasked, as WAL to a standby, and a far end that shows what arrived."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.received = bytearray()
        self._tls = tls
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._stop = threading.Event()
        self.address: Address = self._server.getsockname()[:2]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        conn = raw
        try:
            raw.settimeout(5)
            conn = self._tls.wrap_socket(raw, server_side=True) if self._tls else raw
            conn.settimeout(0.05)
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                    if not data:
                        return
                    self.received += data
                except TimeoutError:
                    pass
                conn.sendall(b"t")
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()
            raw.close()

    def close(self) -> None:
        self._stop.set()
        self._server.close()


def _ticks(conn: socket.socket, seconds: float = 0.4) -> int:
    """How many ticks arrive within `seconds`."""
    got, deadline = 0, time.monotonic() + seconds
    conn.settimeout(0.05)
    while time.monotonic() < deadline:
        try:
            data = conn.recv(4096)
        except (TimeoutError, ssl.SSLWantReadError):
            continue
        if not data:
            break
        got += data.count(b"t")
    return got


def _arrived(ticker: Ticker, payload: bytes, seconds: float = 1.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if payload in ticker.received:
            return True
        time.sleep(0.02)
    return False


def test_one_way_cuts_hold_one_direction_of_open_and_new_connections() -> None:
    ticker = Ticker()
    proxy = TunnelProxy(("127.0.0.1", 0), lambda: ticker.address)
    try:
        conn = socket.create_connection(proxy.address, timeout=2)
        conn.sendall(b"a")
        assert _arrived(ticker, b"a") and _ticks(conn) > 0
        proxy.one_way("requests")  # what the client sends is lost; the stream still delivers
        assert proxy.cut_direction == "requests" and not proxy.partitioned
        conn.sendall(b"b")
        assert _ticks(conn) > 0 and not _arrived(ticker, b"b", 0.3)
        proxy.one_way("answers")  # the other way round: what it sends arrives, nothing comes back
        assert _arrived(ticker, b"b")  # held while that way was cut, not lost: as TCP would resend it
        conn.sendall(b"c")
        assert _arrived(ticker, b"c")
        _ticks(conn, 0.1)  # what was on its way when the cut began
        assert _ticks(conn) == 0
        with socket.create_connection(proxy.address, timeout=2) as new:  # accepted: only the answers are lost
            new.sendall(b"d")
            assert _arrived(ticker, b"d") and _ticks(new) == 0
        proxy.heal()
        assert proxy.cut_direction is None
        conn.sendall(b"e")
        assert _arrived(ticker, b"e") and _ticks(conn) > 0
        conn.close()
        with pytest.raises(RolegenError, match="unknown direction"):
            proxy.one_way("sideways")
    finally:
        proxy.close()
        ticker.close()


def test_one_way_cuts_apply_over_wan_settings_too() -> None:
    ticker = Ticker()
    proxy = TunnelProxy(("127.0.0.1", 0), lambda: ticker.address)
    try:
        proxy.set_wan(WanSettings(latency_ms=5))
        proxy.one_way("answers")
        with socket.create_connection(proxy.address, timeout=2) as conn:
            conn.sendall(b"w")
            assert _arrived(ticker, b"w") and _ticks(conn) == 0
    finally:
        proxy.close()
        ticker.close()


def test_api_answers_cut_answers_reads_applies_the_write_and_loses_its_answer(tmp_path: Path) -> None:
    """Over TLS, as kubectl sends it: a GET is answered, the PATCH after it reaches the server whole (applied
    there) and nothing comes back from then on; `requests` lets not even the handshake through."""
    from rolegen_lab.controlplane import pki

    keys = pki.generate(tmp_path / "pki", "witness")
    serving = server_context(str(keys.serving_crt), str(keys.serving_key))
    ticker = Ticker(serving)
    client = ssl.create_default_context(cafile=str(keys.ca_crt))
    proxy = ApiProxy(("127.0.0.1", 0), ticker.address, serving, upstream_tls=client)
    try:
        proxy.one_way("answers")
        with socket.create_connection(proxy.address, timeout=5) as raw, \
                client.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            conn.sendall(b"GET /lease HTTP/1.1\r\nHost: w\r\n\r\n")
            assert _arrived(ticker, b"GET /lease") and _ticks(conn) > 0  # a read before any write: answered
            conn.sendall(b"PATCH /lease HTTP/1.1\r\nHost: w\r\nContent-Length: 9\r\n\r\n{\"lsn\":7}")
            assert _arrived(ticker, b'{"lsn":7}')
            _ticks(conn, 0.1)  # what was on its way when the write went out
            assert _ticks(conn) == 0
        proxy.one_way("requests")
        with socket.create_connection(proxy.address, timeout=1) as raw, pytest.raises((TimeoutError, ssl.SSLError)):
            client.wrap_socket(raw, server_hostname="127.0.0.1")
        proxy.heal()
        with socket.create_connection(proxy.address, timeout=5) as raw, \
                client.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            conn.sendall(b"PUT /lease HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            assert _arrived(ticker, b"PUT /lease") and _ticks(conn) > 0
    finally:
        proxy.close()
        ticker.close()


def test_request_heads_tell_the_first_write_wherever_the_stream_is_split() -> None:
    from rolegen_lab.network.httprelay import RequestHeads

    read = b"GET /a HTTP/1.1\r\nHost: w\r\n\r\n"
    body_read = b"GET /b HTTP/1.1\r\ncontent-length: 12\r\n\r\nPATCH /x HTT"  # a body that looks like a head
    write = b"PATCH /c HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
    stream = read + body_read + write
    for cut in range(1, len(stream)):
        heads = RequestHeads()
        heads.feed(stream[:cut])
        assert heads.wrote == (cut >= len(read + body_read + write.split(b"\r\n\r\n")[0]) + 4), cut
        heads.feed(stream[cut:])
        assert heads.wrote
    for odd in (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"x" * 70000):
        heads = RequestHeads()
        heads.feed(odd)
        assert heads.wrote  # not requests as kubectl sends them: the worst is assumed


def test_a_connection_kept_open_meets_the_routes_new_fault_too(echo: Address) -> None:
    """rolegen's API proxy keeps one connection open for a whole run: a route that turns slow breaks it, and the
    client reconnects into the fault, as it would through a real route change."""
    proxy = ApiProxy(("127.0.0.1", 0), echo)
    try:
        kept = socket.create_connection(proxy.address, timeout=2)
        kept.sendall(b"one")
        assert kept.recv(10) == b"one"
        proxy.set_mode("slow")
        with pytest.raises(OSError):
            if kept.recv(10) == b"":
                raise ConnectionResetError
        kept.close()
        again = socket.create_connection(proxy.address, timeout=0.5)
        again.sendall(b"two")
        with pytest.raises(TimeoutError):  # the new connection meets the fault
            again.recv(10)
        again.close()
    finally:
        proxy.close()


def test_flaky_resets_a_connection_kept_open_too(echo: Address) -> None:
    proxy = ApiProxy(("127.0.0.1", 0), echo, rng=random.Random(1))
    try:
        proxy.set_mode("flaky", rate=0.01)  # new connections almost always pass: what fails is the kept one
        kept = socket.create_connection(proxy.address, timeout=2)
        kept.sendall(b"x")
        assert kept.recv(10) == b"x"
        deadline = time.monotonic() + 20
        with pytest.raises(OSError):
            while time.monotonic() < deadline:
                kept.sendall(b"y")
                if kept.recv(10) == b"":
                    raise ConnectionResetError
                time.sleep(0.1)
        kept.close()
    finally:
        proxy.close()

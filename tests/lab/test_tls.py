"""The encrypted, authenticated DR link on the lab (real PostgreSQL 18 + Patroni 4.1): the bundled specs run
with TLS verify-full and a REST API Secret; the lab generated the pair's CA and each site's certificate."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from tests.lab.impostor import Impostor, rerouted
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.offline.workspace import load_workspace
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab


def until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def walsenders(lab: Lab) -> list[tuple[str, bool]]:
    """(client address, ssl) of every walsender on gold's leader."""
    with psycopg.connect(lab.dsn("gold"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT host(a.client_addr), s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
            "WHERE a.backend_type = 'walsender' ORDER BY 1").fetchall()
    return [(str(addr), bool(ssl)) for addr, ssl in rows]


def peer_egress(lab: Lab) -> str:
    """Where golddr's connections through gold's tunnel come from: gold's peer.cidrs in the lab's spec."""
    [cidr] = load_workspace(lab.env_dir).specs["gold"].peer.cidrs
    return cidr.removesuffix("/32")


def status_states(lab: Lab, env: str) -> list[str]:
    """The states `rolegen status -f json` shows for the members of `env`."""
    result = CliRunner().invoke(app, ["status", "-f", "json", "--dir", str(lab.env_dir),
                                      "--kubeconfig", str(lab.kubeconfig)])
    data = json.loads(result.stdout)
    [site] = [s for s in data["sites"] if s["environment"] == env]
    return [m["state"] for m in site["members"]]


def test_the_standby_streams_over_tls_verified_against_the_pairs_ca(lab: Lab) -> None:
    egress = peer_egress(lab)
    senders = until(lambda: [w for w in walsenders(lab) if w[0] == egress], 30, "golddr's walsender on gold")
    assert senders == [(egress, True)]  # the peer's walsender: pg_stat_ssl.ssl = true
    assert all(ssl for _, ssl in walsenders(lab))  # gold's own replica too (verify-full on 127.0.0.1)


def test_plaintext_from_the_peer_side_through_the_tunnel_is_refused(lab: Lab) -> None:
    host, port = lab.sites["gold"].tunnel.address
    replication = lab.passwords["patroni-replication"]
    common = f"host={host} port={port} dbname=postgres user={replication['username']} connect_timeout=5"
    refused = r'pg_hba\.conf rejects connection for host "127\.0\.2\.2".*no encryption'  # golddr's egress
    with pytest.raises(psycopg.OperationalError, match=refused):
        psycopg.connect(f"{common} sslmode=disable password={replication['password']}")
    # The same user over TLS, verifying gold's certificate and the tunnel's name (an IP SAN here), gets in.
    with psycopg.connect(f"{common} sslmode=verify-full sslrootcert={lab.tls_ca} "
                         f"password={replication['password']}") as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


def test_rest_api_unsafe_endpoints_need_the_secrets_credentials(lab: Lab) -> None:
    gold = lab.sites["gold"]
    states = gold.member_states()
    [replica] = [m for m in gold.members.values() if states.get(m.name, {}).get("role") == "replica"]
    url = f"http://127.0.0.1:{replica.rest_port}/restart"

    def post(headers: dict[str, str]) -> int:
        request = urllib.request.Request(url, data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code)

    assert post({}) == 401
    assert post({"Authorization": "Basic " + base64.b64encode(b"patroni:wrong").decode()}) == 401
    assert post(lab.rest_auth()) == 200  # the restapi Secret's username and password
    until(lambda: replica.rest("/patroni")[1].get("state") == "running", 60, "the restarted replica running")
    assert replica.rest("/readiness")[0] == 200  # safe endpoints (the probes) stay open


def test_an_impostor_on_the_tunnel_is_refused_and_status_shows_the_standby_not_streaming(lab: Lab) -> None:
    gold, golddr = lab.sites["gold"], lab.sites["golddr"]
    assert "streaming" in status_states(lab, "golddr")
    host = gold.tunnel.address[0]
    impostor = Impostor(lab.root / "impostor", (host, "127.0.0.1", "localhost"))  # right names, wrong CA
    try:
        with rerouted(gold.tunnel, impostor.address):  # drops the link; golddr's reconnects reach the impostor
            until(lambda: impostor.refused >= 1, 60, "golddr's walreceiver breaking off the impostor's handshake")
            until(lambda: "streaming" not in status_states(lab, "golddr"), 60, "rolegen status: golddr not streaming")
            logs = "".join(m.log_tail(20000) for m in golddr.members.values())
            assert "certificate verify failed" in logs
            assert lab.patroni_role("golddr") == "standby-leader"  # refused to stream, still a standby
    finally:
        impostor.close()
    lab.wait_role("golddr", "standby-leader", 60)  # the real peer again: streaming resumes
    # The Pod annotations rolegen reads follow within a Patroni loop.
    until(lambda: "streaming" in status_states(lab, "golddr"), 30, "rolegen status: golddr streaming again")

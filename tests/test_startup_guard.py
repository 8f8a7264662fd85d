"""The chart's startup guard (chart/files/startup-guard.py), its pure parts: how a failed connection to the peer is
read, the decision table, and the connection arguments. The guard in action runs on the lab (tests/lab)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def guard() -> ModuleType:
    spec = importlib.util.spec_from_file_location("startup_guard", REPO / "chart/files/startup-guard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ('connection failed: FATAL:  password authentication failed for user "rewinder"', "refused"),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.5", user "rewinder", database "postgres"', "refused"),
        ('FATAL:  role "rewinder" does not exist', "refused"),
        ("connection to server at \"127.0.1.2\", port 5432 failed: Connection refused", "unreachable"),
        ("connection to server at \"10.1.1.1\", port 5432 failed: timeout expired", "unreachable"),
        ('could not translate host name "patroni-master-gold" to address: Name or service not known', "unreachable"),
        ("server closed the connection unexpectedly", "unreachable"),
        ("something nobody anticipated", "error"),
        # TLS: a certificate the guard does not trust, or a peer without TLS, is a refusal, never "unreachable".
        ('connection to server at "127.0.1.1", port 5432 failed: SSL error: certificate verify failed', "refused"),
        ('server certificate for "impostor" does not match host name "patroni-master-gold"', "refused"),
        ("server does not support SSL, but SSL was required", "refused"),
    ],
)
def test_an_authentication_failure_is_not_an_unreachable_peer(guard: ModuleType, message: str, kind: str) -> None:
    assert guard.classify(message) == kind


@pytest.mark.parametrize(
    ("dcs_standby", "peer", "policy", "expected"),
    [
        (True, "skipped", "start", "start"),  # fenced already: start as a standby
        (False, "standby", "start", "start"),  # the peer follows us: lead
        (False, "primary", "start", "fence"),  # the peer leads: never a second leader
        (False, "primary", "wait", "fence"),
        (False, "unreachable", "start", "start"),  # availability first
        (False, "unreachable", "wait", "wait"),  # safety first
        (False, "refused", "start", "fail"),  # wrong credentials are not an excuse to lead
        (False, "error", "start", "fail"),
    ],
)
def test_decision_table(guard: ModuleType, dcs_standby: bool, peer: str, policy: str, expected: str) -> None:
    assert guard.decide(dcs_standby, peer, policy) == expected


def test_a_password_with_quotes_and_backslashes_reaches_the_driver_unmangled(
    guard: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "it's a \\ secret with 'quotes' and spaces"
    monkeypatch.setenv("PATRONI_REWIND_USERNAME", "rewinder")
    monkeypatch.setenv("PATRONI_REWIND_PASSWORD", password)
    kwargs = guard.connect_kwargs("patroni-master-gold", "5432")
    assert kwargs["password"] == password and kwargs["user"] == "rewinder"
    psycopg = pytest.importorskip("psycopg")
    # The driver builds the conninfo from keyword arguments with its own quoting: it round-trips.
    conninfo = psycopg.conninfo.make_conninfo(**kwargs)
    assert psycopg.conninfo.conninfo_to_dict(conninfo)["password"] == password


def test_with_tls_the_guard_asks_the_peer_as_patronis_rewind_connection_does(
    guard: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "sslmode" not in guard.connect_kwargs("patroni-master-gold", "5432")  # TLS disabled: libpq's default
    monkeypatch.setenv("GUARD_SSLMODE", "verify-full")
    monkeypatch.setenv("GUARD_SSLROOTCERT", "/etc/patroni-tls/ca.crt")
    kwargs = guard.connect_kwargs("patroni-master-gold", "5432")
    assert (kwargs["sslmode"], kwargs["sslrootcert"]) == ("verify-full", "/etc/patroni-tls/ca.crt")
    assert "sslcert" not in kwargs
    monkeypatch.setenv("GUARD_SSLCERT", "/etc/patroni-tls/tls.crt")
    monkeypatch.setenv("GUARD_SSLKEY", "/etc/patroni-tls/tls.key")
    kwargs = guard.connect_kwargs("patroni-master-gold", "5432")
    assert (kwargs["sslcert"], kwargs["sslkey"]) == ("/etc/patroni-tls/tls.crt", "/etc/patroni-tls/tls.key")


def test_each_decision_is_one_greppable_line(guard: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    guard.decision("fail", dcs="leader", peer="patroni-master-gold:5432", peer_state="refused",
                   detail='FATAL:  password authentication failed for user "rewinder"')
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("startup-guard: decision=fail dcs=leader peer=patroni-master-gold:5432 peer_state=refused")
    assert "detail='FATAL:  password authentication failed" in line

"""The chart's startup guard (chart/files/startup-guard.py), its pure parts: how a failed connection to the peer is
read, the decision table, and the connection arguments. The guard in action runs on the lab (tests/lab)."""

from __future__ import annotations

import importlib.util
import json
import urllib.error
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from types import ModuleType

import pytest
import yaml

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


class FakeSite:
    """The guard's world, faked: its own site's API (`<scope>-config`, `<scope>-leader`), the peer's answers one
    per attempt (the last repeats), and a clock that only `sleep` moves."""

    def __init__(self, answers: list[str], config: dict[str, object] | None = None,
                 initialize: str | None = "7190000000000000001") -> None:
        annotations = {"config": json.dumps(config or {"ttl": 30})}
        if initialize:
            annotations["initialize"] = initialize
        self.config_map = {"metadata": {"resourceVersion": "1", "annotations": annotations}}
        self.leader: dict[str, object] | None = None
        self.answers = list(answers)
        self.clock = 0.0
        self.asked_at: list[float] = []
        self.patches: list[dict[str, object]] = []

    def request(self, method: str, path: str, body: object = None) -> object:
        if path.endswith("-leader"):
            if self.leader is None:
                raise urllib.error.HTTPError(path, 404, "Not Found", Message(), None)
            return self.leader
        if method == "PATCH":
            assert isinstance(body, dict)
            self.patches.append(body)
            return self.config_map
        return self.config_map

    def peer_state(self, host: str, port: str) -> tuple[str, str]:
        self.asked_at.append(self.clock)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer, ("connection to server failed: Connection refused" if answer == "unreachable" else "")

    def sleep(self, seconds: float) -> None:
        self.clock += seconds


@pytest.fixture
def run_guard(
    guard: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[str, list[str]]]:
    """Run guard() against a FakeSite; returns how it ended (start, fence or exit 1) and its decision lines."""

    def run(site: FakeSite, policy: str, grace: int = 300, data: bool = True,
            capsys: pytest.CaptureFixture[str] | None = None) -> tuple[str, list[str]]:
        data_dir = tmp_path / "pgdata"
        data_dir.mkdir(exist_ok=True)
        if data:
            (data_dir / "PG_VERSION").write_text("18\n")
        config = tmp_path / "patroni.yml"
        config.write_text(yaml.safe_dump({"scope": "patroni", "kubernetes": {"namespace": "ns"},
                                          "postgresql": {"data_dir": str(data_dir)}}))
        monkeypatch.setenv("GUARD_PEER_HOST", "patroni-master-golddr")
        monkeypatch.setenv("GUARD_PEER_PORT", "5432")
        monkeypatch.setenv("GUARD_PEER_UNREACHABLE", policy)
        monkeypatch.setenv("GUARD_UNREACHABLE_GRACE", str(grace))
        monkeypatch.setenv("PATRONI_NAME", "patroni-1")
        monkeypatch.setattr(guard, "request", site.request)
        monkeypatch.setattr(guard, "peer_state", site.peer_state)
        try:
            guard.guard(str(config), now=lambda: site.clock, sleep=site.sleep)
        except SystemExit as exc:
            outcome = f"exit {exc.code}"
        else:
            outcome = "fence" if site.patches else "start"
        lines = capsys.readouterr().err.splitlines() if capsys else []
        return outcome, [line for line in lines if "decision=" in line]

    return run


def test_a_peer_unreachable_at_first_then_leading_is_followed_never_led_over(
    run_guard: Callable[..., tuple[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    # The returning site cold-starts before its tunnel: three attempts fail, then the tunnel is up and the peer,
    # promoted meanwhile, answers as a primary. Even with the availability-first policy, this site must follow.
    site = FakeSite(["unreachable"] * 3 + ["primary"])
    outcome, lines = run_guard(site, "start", capsys=capsys)
    assert outcome == "fence"
    [patch] = site.patches
    config = json.loads(patch["metadata"]["annotations"]["config"])  # type: ignore[index]
    assert config["standby_cluster"] == {"host": "patroni-master-golddr", "port": 5432}
    assert not any("decision=start" in line for line in lines)
    assert lines[-1].startswith("startup-guard: decision=fence")


@pytest.mark.parametrize(("extras", "fenced"), [
    ('{"primary_slot_name": "gold"}', {"primary_slot_name": "gold"}),  # the DR slot: it streams through it at once
    ('{"host": "elsewhere", "primary_slot_name": "gold"}', {"primary_slot_name": "gold"}),  # the peer's own wins
    ("[1]", {}),  # not an object: the fence alone, never no fence
    ("{", {}),
])
def test_the_fence_carries_the_specs_other_standby_keys(
    run_guard: Callable[..., tuple[str, list[str]]], monkeypatch: pytest.MonkeyPatch, extras: str,
    fenced: dict[str, str]
) -> None:
    monkeypatch.setenv("GUARD_STANDBY_EXTRAS", extras)
    site = FakeSite(["primary"])
    assert run_guard(site, "wait")[0] == "fence"
    [patch] = site.patches
    config = json.loads(patch["metadata"]["annotations"]["config"])  # type: ignore[index]
    assert config["standby_cluster"] == {**fenced, "host": "patroni-master-golddr", "port": 5432}


def test_a_peer_unreachable_past_the_grace_gets_the_configured_policy(
    run_guard: Callable[..., tuple[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    site = FakeSite(["unreachable"])
    outcome, lines = run_guard(site, "start", grace=120, capsys=capsys)
    assert outcome == "start"
    assert site.clock >= 120  # it kept asking for the whole grace before starting as leader
    assert len(site.asked_at) > 10  # ... every few seconds, not once
    # One line per run of attempts (once a minute), not one per attempt.
    assert len(lines) <= 4
    assert lines[-1].startswith("startup-guard: decision=start dcs=leader")
    assert "policy=start" in lines[-1] and "grace=120s" in lines[-1]


def test_with_the_wait_policy_an_unreachable_peer_never_lets_the_site_lead(
    run_guard: Callable[..., tuple[str, list[str]]], guard: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    site = FakeSite(["unreachable"])
    fenced_by_rolegen = {"ttl": 30, "standby_cluster": {"host": "patroni-master-golddr", "port": 5432}}

    def sleep(seconds: float) -> None:
        site.clock += seconds
        if site.clock >= 3600:  # an hour later, rolegen failover writes the fence: the site starts as a standby
            site.config_map["metadata"]["annotations"]["config"] = json.dumps(fenced_by_rolegen)  # type: ignore[index]

    site.sleep = sleep  # type: ignore[method-assign]
    outcome, lines = run_guard(site, "wait", grace=120, capsys=capsys)
    assert outcome == "start" and site.clock >= 3600
    assert lines[-1].startswith("startup-guard: decision=start dcs=standby")
    assert all("decision=wait" in line for line in lines[:-1])


def test_a_refusing_peer_fails_at_once(
    run_guard: Callable[..., tuple[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    site = FakeSite(["refused"])
    outcome, lines = run_guard(site, "start", capsys=capsys)
    assert outcome == "exit 1"
    assert site.asked_at == [0.0] and site.clock == 0  # no retry, no grace
    assert lines[-1].startswith("startup-guard: decision=fail")


def test_a_site_that_never_bootstrapped_starts_without_its_peer(
    run_guard: Callable[..., tuple[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    # A pair's first install: the leader site must run before its standby peer can answer at all.
    site = FakeSite(["unreachable"], initialize=None)
    outcome, lines = run_guard(site, "wait", data=False, capsys=capsys)
    assert outcome == "start" and site.clock == 0
    assert "never bootstrapped" in lines[-1]
    # The same site with data in its volume is not "new": it waits.
    site = FakeSite(["unreachable", "unreachable", "primary"], initialize=None)
    assert run_guard(site, "wait", data=True)[0] == "fence"


def test_a_member_joins_its_sites_live_leader_but_not_a_stale_lock(
    run_guard: Callable[..., tuple[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    # A stale lock (its holder died with the site) never changes: no evidence, the member waits for the peer.
    site = FakeSite(["unreachable", "unreachable", "unreachable", "primary"])
    site.leader = {"metadata": {"resourceVersion": "7", "annotations": {"leader": "patroni-0"}}}
    assert run_guard(site, "wait")[0] == "fence"
    # A lock that its holder renews while the guard watches: this member joins that leader as a replica.
    site = FakeSite(["unreachable"])
    renewals = iter(range(8, 100))

    def renewing_request(method: str, path: str, body: object = None) -> object:
        if path.endswith("-leader"):
            return {"metadata": {"resourceVersion": str(next(renewals)), "annotations": {"leader": "patroni-0"}}}
        return FakeSite.request(site, method, path, body)

    site.request = renewing_request  # type: ignore[method-assign]
    outcome, lines = run_guard(site, "wait", capsys=capsys)
    assert outcome == "start" and len(site.asked_at) == 2
    assert "patroni-0 leads this site" in lines[-1]


@pytest.mark.parametrize(
    ("unreachable_for", "policy", "expected"),
    [
        (0, "start", "wait"),  # the first failed attempt is no evidence: keep asking
        (299, "start", "wait"),
        (300, "start", "start"),  # the grace is over: the configured policy
        (300, "wait", "wait"),
        (86400, "wait", "wait"),
    ],
)
def test_unreachable_counts_only_after_the_grace(
    guard: ModuleType, unreachable_for: float, policy: str, expected: str
) -> None:
    assert guard.decide(False, "unreachable", policy, unreachable_for, 300) == expected

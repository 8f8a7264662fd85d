"""`rolegen status` without a cluster: the verdict a monitor or a script acts on (exit code), FENCE PENDING only
when two sites could lead, DIVERGED with the repair named, LSNs as PostgreSQL writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.commands import status as status_cmd
from rolegen.kubectl import ClusterUnreachable
from rolegen.records import Records
from rolegen.site_state import Member, SiteState
from rolegen.spec import Spec

runner = CliRunner()
STANDBY = {"standby_cluster": {"host": "peer", "port": 5432}}


def state(env: str, role: str, timeline: int = 2, lsn: int = 83886176, *, dcs: str | None = None,
          records: Records | None = None, history: str | None = None, member_state: str | None = None) -> SiteState:
    config = STANDBY if (dcs or role) == "standby-leader" else {}
    annotations = {"initialize": "7712"} | ({"history": history} if history else {})
    member_state = member_state or ("streaming" if role == "standby-leader" else "running")
    member = Member(f"{env}-0", role, member_state, timeline, lsn, None,
                    lsn if role == "standby-leader" else None, True, "x")
    lock = {"leader": f"{env}-0", "renewTime": datetime.now(UTC).isoformat(), "ttl": "30"}
    return SiteState(env, config, "1", annotations, lock, [member], records=records or Records())


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What each site's API answers: a SiteState, or an exception to raise."""
    answers: dict[str, Any] = {}

    def read_site(spec: Spec, cluster: Any) -> SiteState:
        answer = answers[spec.environment]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    monkeypatch.setattr(status_cmd, "read_site", read_site)
    return answers


def test_a_healthy_pair_exits_0_and_prints_lsns_as_postgres_does(live: dict[str, Any], workdir: Path) -> None:
    live.update(gold=state("gold", "leader"), golddr=state("golddr", "standby-leader"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "lsn 0/5000060" in result.stdout and result.stdout.rstrip().endswith("healthy")
    data = json.loads(runner.invoke(app, ["status", "-f", "json"]).stdout)
    assert data["healthy"] is True and data["problems"] == []
    member = data["sites"][0]["members"][0]
    assert (member["lsn"], member["lsn_text"]) == (83886176, "0/5000060")


def test_an_unreachable_site_a_role_mismatch_and_a_pending_fence_exit_1(live: dict[str, Any], workdir: Path) -> None:
    live.update(gold=ClusterUnreachable("cannot reach the cluster of context gold"),
                golddr=state("golddr", "standby-leader"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "NOT HEALTHY: gold unreachable" in result.stdout
    # After a failover the specs say golddr leads; gold's DCS config still declares leader: fence pending.
    for env, role in (("gold", "standby-leader"), ("golddr", "leader")):
        assert runner.invoke(app, ["render", "--env", env, "--role", role]).exit_code == 0
    live.update(gold=state("gold", "leader"), golddr=state("golddr", "leader"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "FENCE PENDING: gold must get standby_cluster" in result.stdout
    assert "gold reports leader, declared standby-leader" in result.stdout


def test_the_only_leader_is_never_called_fence_pending(live: dict[str, Any], workdir: Path) -> None:
    """The spec lags behind (a failback's last switchover was not recorded): a mismatch, not a fence."""
    for env, role in (("gold", "standby-leader"), ("golddr", "leader")):
        assert runner.invoke(app, ["render", "--env", env, "--role", role]).exit_code == 0
    live.update(gold=state("gold", "leader"), golddr=state("golddr", "standby-leader"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "FENCE PENDING" not in result.stdout
    assert "golddr reports standby-leader, declared leader" in result.stdout


def test_a_diverged_site_is_named_with_its_repair(live: dict[str, Any], workdir: Path) -> None:
    promotion = {"id": "golddr->gold@2/100", "from": "golddr", "timeline_before": 2, "timeline": 3}
    live.update(gold=state("gold", "leader", timeline=3, records=Records("1", promotion=promotion)),
                golddr=state("golddr", "standby-leader", timeline=3))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "DIVERGED: golddr-0 is on timeline 3, which gold began when rolegen promoted it" in result.stdout
    assert "repair: rolegen failback --to golddr (method reseed)" in result.stdout
    data = json.loads(runner.invoke(app, ["status", "-f", "json"]).stdout)
    assert data["sites"][1]["diverged"]["repair"] == "reseed"


def test_a_standby_site_that_does_not_stream_is_not_healthy(live: dict[str, Any], workdir: Path) -> None:
    # The tunnel is down or the peer refused the standby (TLS): Patroni still reports a standby leader, but every
    # commit on the leader's site since is lost with that site. A monitor reading the exit code must see it.
    live.update(gold=state("gold", "leader"), golddr=state("golddr", "standby-leader", member_state="running"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "NOT HEALTHY: golddr not streaming from its peer (standby leader running)" in result.stdout
    data = json.loads(runner.invoke(app, ["status", "-f", "json"]).stdout)
    assert data["problems"] == ["golddr not streaming from its peer (standby leader running)"]

"""`rolegen status` without a cluster: the verdict a monitor or a script acts on (exit code), FENCE PENDING only
when two sites could lead, DIVERGED with the repair named, LSNs as PostgreSQL writes them."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster.kubectl import ClusterUnreachable
from rolegen.cluster.records import Records
from rolegen.cluster.site_state import Member, SiteState
from rolegen.cluster.storage import Storage
from rolegen.commands import status as status_cmd
from rolegen.offline.spec import Spec

runner = CliRunner()
STANDBY = {"standby_cluster": {"host": "peer", "port": 5432}}


def live_config(env: str, role: str) -> dict[str, Any]:
    """The DCS config as rolegen writes it for `role`: with the DR slot of the bundled specs (dr_slot on)."""
    if role == "standby-leader":
        return {"standby_cluster": {**STANDBY["standby_cluster"], "primary_slot_name": env}}
    peer = "golddr" if env == "gold" else "gold"
    return {"slots": {peer: {"type": "physical", "cluster_type": "primary"}}}


def state(env: str, role: str, timeline: int = 2, lsn: int = 83886176, *, dcs: str | None = None,
          records: Records | None = None, history: str | None = None, member_state: str | None = None,
          renewed: datetime | None = None, running: bool | None = True) -> SiteState:
    config = live_config(env, dcs or role)
    annotations = {"initialize": "7712"} | ({"history": history} if history else {})
    member_state = member_state or ("streaming" if role == "standby-leader" else "running")
    member = Member(f"{env}-0", role, member_state, timeline, lsn, None,
                    lsn if role == "standby-leader" else None, running, "x")
    lock = {"leader": f"{env}-0", "renewTime": (renewed or datetime.now(UTC)).isoformat(), "ttl": "30"}
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


def _with_figures(site: SiteState, **figures: int) -> SiteState:
    """`site` whose member published its storage figures (the chart's member_figures.py)."""
    [member] = site.members
    lsn = member.lsn or 0
    storage = Storage(site.dcs_role != "leader", figures["wal"], figures["data"], lsn - (8 << 20), lsn,
                      figures.get("fpi", 0), 8192, lsn - (8 << 20))
    return dataclasses.replace(site, members=[dataclasses.replace(member, storage=storage)])


def test_a_diverged_site_names_what_its_repair_would_move_and_members_their_sizes(live: dict[str, Any],
                                                                                  workdir: Path) -> None:
    """golddr came back on gold's new timeline number without rolegen seeing it fenced first: only a re-seed
    repairs it, and status says what that would move over the DR link, from the leading member's own figures."""
    mib = 1 << 20
    promotion = {"id": "golddr->gold@2/100", "from": "golddr", "timeline_before": 2, "timeline": 3}
    gold = state("gold", "leader", timeline=3, records=Records("1", promotion=promotion))
    live.update(gold=_with_figures(gold, wal=64 * mib, data=1000 * mib),
                golddr=state("golddr", "standby-leader", timeline=3))  # publishes no figures (figuresEvery: 0)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "gold-0               leader          running    tl 3  lsn 0/5000060  pg_wal 64.0 MiB, databases 1000.0 " \
        "MiB\n" in result.stdout
    live.update(gold=_with_figures(gold, wal=2 << 30, data=(3 << 40) // 2))  # a big one: in GiB and TiB
    assert "pg_wal 2.0 GiB, databases 1.5 TiB\n" in runner.invoke(app, ["status"]).stdout
    live.update(gold=_with_figures(gold, wal=64 * mib, data=1000 * mib))
    assert "golddr-0             standby-leader  streaming  tl 3  lsn 0/5000060\n" in result.stdout
    assert "    repair: rolegen failback --to golddr (method reseed)\n" in result.stdout
    assert "    over the DR link: a re-seed about 1,000 MiB\n" in result.stdout
    data = json.loads(runner.invoke(app, ["status", "-f", "json"]).stdout)
    diverged = data["sites"][1]["diverged"]
    assert (diverged["repair"], diverged["method"], diverged["predicted"]["reseed_bytes"]) == ("reseed", "reseed",
                                                                                              1000 * mib)
    assert data["sites"][0]["members"][0]["storage"]["wal_bytes"] == 64 * mib
    assert data["sites"][1]["members"][0]["storage"] is None
    metrics = runner.invoke(app, ["status", "-f", "prometheus"]).stdout
    assert f'rolegen_failback_predicted_bytes{{method="reseed",site="golddr"}} {1000 * mib}\n' in metrics
    assert 'method="rewind"' not in metrics  # pg_rewind cannot repair a timeline number used twice
    assert f'rolegen_member_wal_bytes{{member="gold-0",site="gold"}} {64 * mib}\n' in metrics
    assert f'rolegen_member_database_bytes{{member="gold-0",site="gold"}} {1000 * mib}\n' in metrics
    assert 'member="golddr-0"' not in metrics  # no figure is made up


def test_a_standby_site_that_does_not_stream_is_not_healthy(live: dict[str, Any], workdir: Path) -> None:
    # The tunnel is down or the peer refused the standby (TLS): Patroni still reports a standby leader, but every
    # commit on the leader's site since is lost with that site. A monitor reading the exit code must see it.
    live.update(gold=state("gold", "leader"), golddr=state("golddr", "standby-leader", member_state="running"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "NOT HEALTHY: golddr not streaming from its peer (standby leader running)" in result.stdout
    data = json.loads(runner.invoke(app, ["status", "-f", "json"]).stdout)
    assert data["problems"] == ["golddr not streaming from its peer (standby leader running)"]


def problems(live: dict[str, Any]) -> list[str]:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1, result.output
    return [line.removeprefix("NOT HEALTHY: ") for line in result.stdout.splitlines() if "NOT HEALTHY" in line]


def test_a_paused_leader_whose_dcs_config_says_standby_is_a_time_bomb(live: dict[str, Any], workdir: Path) -> None:
    """What a switchover against a paused Patroni leaves (issue #21, N10): gold still leads (paused), its DCS config
    says standby, golddr streams without its slot. The next `patronictl resume` demotes gold with nobody leading:
    status must fail and name, a problem a line, what clears each part, in the order that is safe."""
    gold = state("gold", "leader", dcs="standby-leader")
    assert gold.config is not None
    gold.config["pause"] = True
    golddr = state("golddr", "standby-leader")
    assert golddr.config is not None
    del golddr.config["standby_cluster"]["primary_slot_name"]
    live.update(gold=gold, golddr=golddr)
    assert problems(live) == [
        "gold's DCS config declares standby-leader, its spec leader, Patroni still runs it as leader: its next "
        "resume or restart makes it standby-leader; clear: rolegen apply --env gold (writes the declared role back)",
        "gold is paused (Patroni maintenance mode: it acts on no role change and fails nothing over); clear: rolegen "
        "apply --env gold first, then kubectl --context gold -n f088b1-prod exec gold-0 -c patroni -- patronictl -c "
        "/etc/patroni/patroni.yml resume",
        "golddr streams without its DR slot (standby_cluster.primary_slot_name missing, declared golddr): gold may "
        "remove WAL it still needs; clear: rolegen apply --env golddr",
    ]
    assert "gold (context gold): declared leader; DCS config standby-leader (PAUSED); Patroni reports leader" \
        in runner.invoke(app, ["status"]).stdout
    data = json.loads(runner.invoke(app, ["status", "-f", "json"]).stdout)
    assert data["healthy"] is False and data["sites"][0]["paused"] is True


def test_a_paused_site_in_its_declared_role_only_needs_a_resume(live: dict[str, Any], workdir: Path) -> None:
    golddr = state("golddr", "standby-leader")
    assert golddr.config is not None
    golddr.config["pause"] = True
    live.update(gold=state("gold", "leader"), golddr=golddr)
    [problem] = problems(live)
    assert problem.startswith("golddr is paused") and problem.endswith(
        "clear: kubectl --context golddr -n f088b1-prod exec golddr-0 -c patroni -- patronictl -c "
        "/etc/patroni/patroni.yml resume")


def test_a_leader_config_without_its_dr_slot_and_a_lag_beyond_the_bound_fail(live: dict[str, Any],
                                                                              workdir: Path) -> None:
    gold = state("gold", "leader", lsn=500 << 20)
    assert gold.config is not None
    del gold.config["slots"]
    live.update(gold=gold, golddr=state("golddr", "standby-leader", lsn=400 << 20))
    assert problems(live) == [
        "gold's DCS config lacks its DR slot golddr (`slots`): Patroni keeps none for golddr; clear: rolegen apply "
        "--env gold",
        "golddr lags 100.0 MiB behind (bound 16.0 MiB: a switchover refuses); clear: rolegen status once it caught "
        "up; if the lag keeps growing, check the DR link",
    ]


def test_a_spec_lagging_behind_the_live_roles_names_the_render_that_records_them(live: dict[str, Any],
                                                                                 workdir: Path) -> None:
    """Never `apply` here: it would demote the only leader."""
    for env, role in (("gold", "standby-leader"), ("golddr", "leader")):
        assert runner.invoke(app, ["render", "--env", env, "--role", role]).exit_code == 0
    live.update(gold=state("gold", "leader"), golddr=state("golddr", "standby-leader"))
    found = problems(live)
    assert "gold's DCS config declares leader, its spec standby-leader: the spec lags behind; clear: rolegen render " \
           "--env gold --role leader (records it)" in found
    assert not any("apply" in p for p in found)


@pytest.mark.parametrize("skew", [timedelta(minutes=-10), timedelta(minutes=10)])
def test_the_verdict_does_not_depend_on_this_machines_clock(live: dict[str, Any], workdir: Path,
                                                            skew: timedelta) -> None:
    """Patroni's renewTime comes from the cluster's clock: ten minutes off either way changes nothing (N13)."""
    renewed = datetime.now(UTC) + skew
    live.update(gold=state("gold", "leader", renewed=renewed),
                golddr=state("golddr", "standby-leader", renewed=renewed))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    # A leader whose container stopped does not lead, however fresh its lock looks.
    live.update(gold=state("gold", "leader", renewed=datetime.now(UTC) + skew, running=False))
    assert "gold reports no leader, declared leader" in problems(live)


def test_dependents_are_shown_per_site_and_one_out_of_its_roles_shape_is_a_problem(
    live: dict[str, Any], workdir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.dependents_example import add_example
    from tests.fake_dependents import FakeApps, FakeReleases

    from rolegen.cluster import dependents

    specs = add_example(workdir / "environments")
    assert runner.invoke(app, ["render", "--all"]).exit_code == 0
    apps = FakeReleases.apps = {env: FakeApps(env) for env in specs}
    for env, site in apps.items():
        site.add("Deployment", "web", 3)  # golddr's too: someone scaled the standby site's web up
        role = specs[env]["role"]
        values = {**specs[env]["dependents"][0]["values"], **specs[env]["dependents"][0]["role_values"][role]}
        FakeReleases(site).upgrade_install("identity", values)
        site.settle()
    monkeypatch.setattr(dependents, "Releases", FakeReleases)
    monkeypatch.setattr(dependents, "read_all", lambda cluster, deps: tuple(
        dependents.read_dependent(apps[cluster.context], d) for d in deps))
    live.update(gold=state("gold", "leader"), golddr=state("golddr", "standby-leader"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    gold_at, golddr_at = (next(i for i, line in enumerate(lines) if line.startswith(f"{env} (context"))
                          for env in ("gold", "golddr"))
    assert "  dependent web: Deployment web 3/3 ready" in lines[gold_at:golddr_at]
    assert "  dependent identity: helm release identity rev 1 (deployed): Deployment identity 0/0 ready" in \
        lines[golddr_at:]
    assert "NOT HEALTHY: golddr dependent Deployment web is scaled to 3, not 0; clear: rolegen apply --env golddr" \
        in lines
    assert not any(line.startswith("NOT HEALTHY: gold dependent") for line in lines)
    data = json.loads(runner.invoke(app, ["status", "-f", "json"]).stdout)
    assert [(d["name"], d["workloads"][0]["replicas"]) for d in data["sites"][1]["dependents"]] == [
        ("identity", 0), ("web", 3)]

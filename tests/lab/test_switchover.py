"""Planned switchover on the lab, with a writer recording acknowledged commits the whole time; the CLI's
switchover also watched as a user would: `kubectl get events` on both sites, `rolegen history`, and a real
Prometheus scraping `rolegen exporter` (the role flip, the role-change lease while it runs)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.lab import prometheus_lab
from tests.lab.prometheus_lab import query, wait_for

from conftest import history_alone, lab_cluster, member_dsn
from conftest import lab_pair as pair
from rolegen.cluster.records import Records, records_map
from rolegen.commands.render import RenderOptions
from rolegen.commands.render import run as render
from rolegen.offline.workspace import load_workspace
from rolegen.procedures import switchover
from rolegen.procedures.base import Pair
from rolegen_lab.drills.workload import AckWriter, missing_ids
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab


def declared(lab: Lab) -> dict[str, str]:
    return {name: spec.role for name, spec in load_workspace(lab.env_dir).specs.items()}


def no_confirm(_: str) -> None:
    return None


def dr_slots(lab: Lab, env: str) -> dict[str, tuple[bool, ...]]:
    """The DR slots (named after a site) on each member of `env`: whether each is active."""
    found: dict[str, list[bool]] = {}
    for ordinal in lab.sites[env].members:
        with psycopg.connect(member_dsn(lab, env, ordinal), autocommit=True, connect_timeout=2) as conn:
            for name, active in conn.execute("SELECT slot_name, active FROM pg_replication_slots "
                                             "WHERE slot_name IN ('gold', 'golddr')"):
                found.setdefault(name, []).append(active)
    return {name: tuple(sorted(states)) for name, states in found.items()}


def wait_dr_slot(lab: Lab, leader: str, standby: str, timeout: float = 30) -> None:
    """Every member of `leader` keeps the slot for `standby`, its leader's copy in use by the standby; no member
    of `standby` keeps one (no orphan slot on the site that became the standby)."""
    members = len(lab.sites[leader].members)
    want = {standby: tuple(sorted([False] * (members - 1) + [True]))}
    deadline = time.monotonic() + timeout

    def slots() -> object:
        # The old leader may still be restarting as a standby: a switchover returns once its site follows (its
        # standby leader streams), before each of its members is back.
        try:
            return dr_slots(lab, leader), dr_slots(lab, standby)
        except psycopg.OperationalError as exc:
            return f"a member not accepting connections yet ({exc})"

    while (seen := slots()) != (want, {}):
        assert time.monotonic() < deadline, f"DR slots on {leader}, {standby}: {seen}, want {want} and none"
        time.sleep(0.2)


def test_switchover_there_and_back_loses_no_acknowledged_write(lab: Lab) -> None:
    log: list[str] = []
    with AckWriter([lab.dsn("gold"), lab.dsn("golddr")]) as writer:
        wait_dr_slot(lab, "gold", "golddr")
        first = switchover.run(pair(lab, "golddr", log), confirm=no_confirm)
        lab.wait_role("golddr", "leader")
        assert lab.patroni_role("gold") == "standby-leader"
        assert declared(lab) == {"gold": "standby-leader", "golddr": "leader"}
        wait_dr_slot(lab, "golddr", "gold")  # gold's slot for golddr dropped on both of its members
        back = switchover.run(pair(lab, "gold", log), confirm=no_confirm)
        lab.wait_role("gold", "leader")
        wait_dr_slot(lab, "gold", "golddr")  # on gold's replica too (Patroni >= 3.2 keeps it there)
    assert missing_ids(lab.dsn("gold"), writer.log.acknowledged) == []
    assert len(writer.log.acknowledged) > 100
    assert declared(lab) == {"gold": "leader", "golddr": "standby-leader"}
    assert render(lab.env_dir, RenderOptions(all_envs=True, check=True)).changes  # --check passes: no raise
    assert first.final_lsn and back.final_lsn and back.final_lsn > first.final_lsn
    assert "[3/6] Wait for the LSN gate" in log
    # Timings of the first move: demote written, gate passed, promote written, promoted, verified (seconds).
    assert first.timings["demoted"] <= first.timings["gate"] <= first.timings["promote_written"]
    # Each old leader proved its own clean shutdown (its pg_control, published by the chart's watcher, while its
    # Patroni was stopping it): the fence record names it no writer and keeps its shutdown checkpoint, which is
    # the gate's final position at least (Patroni's own report of it comes only after its demotion's waits).
    for site, move in (("gold", first), ("golddr", back)):
        spec = load_workspace(lab.env_dir).specs[site]
        record = Records.from_object(lab_cluster(lab, site).get("configmap", records_map(spec))).fence or {}
        proofs = [m["shutdown_checkpoint"] for m in record.get("members", {}).values() if "shutdown_checkpoint" in m]
        assert record.get("writers") == [] and len(proofs) == 1, record
        assert move.final_lsn is not None and proofs[0] <= move.final_lsn


def test_switchover_to_the_current_leader_changes_nothing(lab: Lab) -> None:
    log: list[str] = []
    switchover.run(pair(lab, "gold", log), confirm=no_confirm)
    assert log == ["Not changed: gold is already leader"]


class Killed(BaseException):
    pass


@pytest.mark.parametrize("killed_at", ["demoted", "gate", "promote_written"])
def test_killed_at_any_step_and_rerun_converges_without_loss(
    lab: Lab, killed_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    to = "golddr" if lab.patroni_role("gold") == "leader" else "gold"
    original_mark = Pair.mark

    def die(self: Pair, event: str) -> None:
        original_mark(self, event)
        if event == killed_at:
            raise Killed(event)

    with AckWriter([lab.dsn("gold"), lab.dsn("golddr")]) as writer:
        monkeypatch.setattr(Pair, "mark", die)
        with pytest.raises(Killed):
            switchover.run(pair(lab, to), confirm=no_confirm)
        monkeypatch.setattr(Pair, "mark", original_mark)
        # Never two leaders while rolegen is dead.
        assert not (lab.patroni_role("gold") == "leader" and lab.patroni_role("golddr") == "leader")
        log: list[str] = []
        result = switchover.run(pair(lab, to, log), confirm=no_confirm)
        lab.wait_role(to, "leader")
    assert result.resumed is not None
    assert missing_ids(lab.dsn(to), writer.log.acknowledged) == []


# A switchover's Events, in the order it wrote them (rolegen.procedures.journal; no witness in the shared lab).
SWITCHOVER_STEPS = ["RoleChangeStarted", "DemoteWritten", "RoleChangeFenced", "LsnGatePassed", "PromotionWritten",
                    "Promoted", "Verified", "RoleChangeSucceeded"]


@pytest.fixture
def prometheus(lab: Lab, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping `rolegen exporter` on the lab (tests/lab/prometheus_lab.py); its base URL."""
    with prometheus_lab.exporter(lab, tmp_path) as address, prometheus_lab.prometheus(address, tmp_path) as base:
        yield base


def config_events(lab: Lab, env: str) -> list[dict[str, Any]]:
    """`kubectl get events --field-selector involvedObject.name=<scope>-config` on a site, as the server lists them."""
    spec = pair(lab, env).to
    out = lab_cluster(lab, env).kubectl("get", "events", "--field-selector",
                                        f"involvedObject.name={spec.config_map}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def hold_at_verified(prometheus: str, sites: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Hold the next run at its `verified` mark (roles moved, lease still held) until Prometheus shows the
    lease held on `sites`: the lease holder seen during a role change, not left to a race with the scrape."""
    seen: list[str] = []
    original_mark = Pair.mark

    def mark(self: Pair, event: str) -> None:
        original_mark(self, event)
        if event == "verified":
            for site in sites:
                wait_for(prometheus, f'rolegen_lease_held{{site="{site}"}}', lambda v: v == 1, 20, f"{site}'s lease")
                seen.append(site)

    monkeypatch.setattr(Pair, "mark", mark)
    return seen


def test_cli_status_then_switchover_needs_yes_without_a_terminal(
    lab: Lab, prometheus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from rolegen.cli import app

    runner = CliRunner()
    common = ["--dir", str(lab.env_dir), "--kubeconfig", str(lab.kubeconfig)]
    # Healthy once the demoted site of the previous test streams again (a standby that does not stream is not).
    deadline = time.monotonic() + 60
    while (status := runner.invoke(app, ["status", "-f", "json", *common])).exit_code and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    roles = {s["environment"]: (s["declared"], s["live_role"]) for s in data["sites"]}
    leader = "gold" if roles["gold"][1] == "leader" else "golddr"  # earlier tests may have moved it
    other = "golddr" if leader == "gold" else "gold"
    assert roles == {leader: ("leader", "leader"), other: ("standby-leader", "standby-leader")}
    assert data["same_system_id"] is True
    assert not any(s["fence_pending"] for s in data["sites"])

    refused = runner.invoke(app, ["switchover", "--to", other, *common])
    assert refused.exit_code == 1
    assert "hint: re-run with --yes" in refused.stderr
    assert lab.patroni_role(leader) == "leader"

    wait_for(prometheus, f'rolegen_site_role{{site="{leader}",source="live",role="leader"}}', lambda v: v == 1, 60,
             f"Prometheus to see {leader} leading")
    assert query(prometheus, f'rolegen_lease_held{{site="{other}"}}') == 0
    before = {env: {e["metadata"]["name"] for e in config_events(lab, env)} for env in (leader, other)}
    held = hold_at_verified(prometheus, (leader, other), monkeypatch)
    moved = runner.invoke(app, ["switchover", "--to", other, "--yes", *common])
    monkeypatch.undo()
    assert moved.exit_code == 0, moved.output
    assert "[6/6] Record the new roles" in moved.stdout
    assert held == [leader, other]
    # The role flip, as Prometheus stores it; the lease released.
    wait_for(prometheus, f'rolegen_site_role{{site="{other}",source="live",role="leader"}}', lambda v: v == 1, 30,
             f"Prometheus to see {other} leading")
    wait_for(prometheus, f'rolegen_site_role{{site="{leader}",source="live",role="standby-leader"}}',
             lambda v: v == 1, 30, f"Prometheus to see {leader} as the standby leader")
    wait_for(prometheus, f'sum(rolegen_lease_held{{site=~"{leader}|{other}"}})', lambda v: v == 0, 30,
             "the lease released")
    # Each step of it on both sites, in order, from kubectl alone.
    for env in (leader, other):
        deadline = time.monotonic() + 10  # the run waited for its Events; a slow API server may still be writing
        while len(new := [e for e in config_events(lab, env) if e["metadata"]["name"] not in before[env]]) < len(
                SWITCHOVER_STEPS) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [e["reason"] for e in new] == SWITCHOVER_STEPS, [(e["reason"], e["message"]) for e in new]
        assert all(e["message"].startswith(f"switchover {leader} -> {other}: ") for e in new), new
        assert "LSN" in new[SWITCHOVER_STEPS.index("LsnGatePassed")]["message"]
    # Its story on both sites without rolegen (issue 24): the Promoted Event on each <scope>-config, and the
    # switchover in `rolegen history`, held by both sites.
    sites = pair(lab, other)
    for spec in (sites.to, sites.other):
        promoted = [e for e in sites.cluster(spec).list("events") if e.get("reason") == "Promoted"
                    and e["involvedObject"]["name"] == spec.config_map]
        assert promoted and f"switchover {leader} -> {other}: {other} reports leader" in promoted[-1]["message"]
        assert promoted[-1]["source"]["component"] == "rolegen"
    shown = runner.invoke(app, ["history", "-f", "json", *common])
    assert shown.exit_code == 0, shown.output
    done = [r for r in json.loads(shown.stdout)["history"]
            if (r["verb"], r["to"], r["outcome"]) == ("switchover", other, "ok")]
    assert done and done[-1]["sites"] == ["gold", "golddr"] and done[-1]["lsn"] is not None
    for cut, alone in ((leader, other), (other, leader)):  # either site alone holds it
        held_alone = [r for r in history_alone(lab, cut, alone) if r["started"] == done[-1]["started"]]
        assert [(r["verb"], r["lsn"], r["sites"]) for r in held_alone] == [("switchover", done[-1]["lsn"], [alone])]
    back = runner.invoke(app, ["switchover", "--to", leader, "--yes", *common])
    assert back.exit_code == 0, back.output
    lab.wait_role(leader, "leader")

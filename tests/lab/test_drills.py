"""Every drill scenario on one shared lab, each PASS criterion of its report asserted on its own: acknowledged
writes kept where the fault model promises it, no timeline number selected on both sites, never two writable
primaries, convergence back to the baseline, and every rolegen run ending as the scenario requires.

The drills run on their lane's shared lab, after its other modules. The baseline (gold leads, golddr streams) is
restored between scenarios; a lab a scenario left unrecoverable is rebuilt, so one failure does not cascade into
the next scenario's verdict."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from tests.lanes import COVERED_ELSEWHERE

from conftest import MiB, member_dsn, shared_at_baseline
from rolegen_lab.control.channel import LocalControl
from rolegen_lab.drills.report import Report, duplicate_timelines
from rolegen_lab.drills.runner import Drill, restore_baseline
from rolegen_lab.drills.scenarios import SCENARIOS
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab
TIMEOUT = 60  # rolegen --timeout (the CLI default) and each convergence wait


class DrillLab:
    """The lane's shared lab (the `lab` fixture); `report(name)` runs a scenario once (from the baseline) and
    caches its report."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.reports: dict[str, Report] = {}

    def report(self, name: str) -> Report:
        if name not in self.reports:
            self.lab = shared_at_baseline()  # restored, or rebuilt when the last scenario left it unrecoverable
            self.reports[name] = Drill(LocalControl(self.lab), SCENARIOS[name], timeout=TIMEOUT).run()
        return self.reports[name]


@pytest.fixture(scope="module")
def drills(lab: Lab) -> DrillLab:
    return DrillLab(lab)


def poll(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except psycopg.Error:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def holds_for(predicate: Callable[[], object], seconds: float) -> bool:
    """True if `predicate` stays true for `seconds` (a negative check needs a duration)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(0.2)
    return True


def exists(dsn: str, table: str) -> bool:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
        return conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,)


def rows(dsn: str, table: str) -> int:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


# -- the lab's faults, as `rolegen lab kill|start|pause|resume|cut|heal` apply them ------------------------------
def test_a_cut_tunnel_stops_replication_while_local_writes_continue(drills: DrillLab) -> None:
    lab = drills.lab
    with psycopg.connect(lab.dsn("gold"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS drill_cut (v int)")
    standby, before = member_dsn(lab, "golddr", 0), rows(lab.dsn("gold"), "drill_cut")
    poll(lambda: exists(standby, "drill_cut") and rows(standby, "drill_cut") == before, 20, "golddr caught up")
    assert lab.cut() == ["gold", "golddr"]
    try:
        with psycopg.connect(lab.dsn("gold"), autocommit=True, connect_timeout=2) as conn:  # the master is up
            conn.execute("INSERT INTO drill_cut VALUES (1)")
        assert holds_for(lambda: rows(standby, "drill_cut") == before, 2), "the row crossed a cut tunnel"
    finally:
        assert lab.heal() == ["gold", "golddr"]
    poll(lambda: rows(standby, "drill_cut") == before + 1, 30, "the row to reach golddr after heal")


def test_a_killed_member_is_restarted_unless_kept_down(drills: DrillLab) -> None:
    lab, site = drills.lab, drills.lab.sites["gold"]
    member = site.members[1]
    assert lab.kill("gold", "patroni-1", restart=False) == ["patroni-1"]
    assert holds_for(lambda: not member.running, 1.5), "a kept-down member was restarted"
    assert lab.faults()["gold"]["held"] == ["patroni-1"]
    assert lab.start("gold", "patroni-1") == ["patroni-1"]
    poll(lambda: member.running, 10, "patroni-1 started again")
    first = member.process.process.pid if member.process else None
    lab.kill("gold", "1")
    poll(lambda: member.running and member.process and member.process.process.pid != first, 10, "a kubelet restart")
    lab.wait_role("gold", "leader", 60)


def test_a_paused_patroni_keeps_its_postgresql_serving(drills: DrillLab) -> None:
    lab, site = drills.lab, drills.lab.sites["golddr"]
    assert lab.pause("golddr", "leader") == ["patroni-0"]
    try:
        assert site.members[0].rest("/patroni") == (0, {})  # Patroni answers nothing
        with psycopg.connect(member_dsn(lab, "golddr", 0), autocommit=True, connect_timeout=2) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)  # PostgreSQL serves
    finally:
        assert lab.resume("golddr", "patroni-0") == ["patroni-0"]
    poll(lambda: site.members[0].rest("/patroni")[0] == 200, 10, "Patroni answering again")


def _details(report: Report) -> str:
    return "\n".join(report.lines())


def no_acknowledged_write_lost(report: Report) -> None:
    assert report.acknowledged > 0, "the workload never wrote"
    if SCENARIOS[report.scenario].expect.zero_loss:
        assert report.lost == [], f"{len(report.lost)} acknowledged writes lost\n{_details(report)}"


def no_timeline_selected_on_both_sites(report: Report) -> None:
    assert duplicate_timelines(report.timelines) == [], _details(report)


def never_two_writable_primaries(report: Report) -> None:
    assert report.probes > 0
    assert report.dual_primaries == [], _details(report)


def converges_back_to_the_baseline(report: Report) -> None:
    assert report.converged, _details(report)
    assert report.final_leader == "gold"
    assert report.final_roles == {"gold": {"live": "leader", "declared": "leader"},
                                  "golddr": {"live": "standby-leader", "declared": "standby-leader"}}


def every_run_ends_as_required(report: Report) -> None:
    assert report.runs, "no rolegen run was made"
    assert report.reasons == [], _details(report)  # includes each run's and each concurrent group's problems


CRITERIA: list[Callable[[Report], None]] = [
    no_acknowledged_write_lost,
    no_timeline_selected_on_both_sites,
    never_two_writable_primaries,
    converges_back_to_the_baseline,
    every_run_ends_as_required,
]


IN_SUITE = [name for name in SCENARIOS if name not in COVERED_ELSEWHERE]


@pytest.mark.parametrize("criterion", CRITERIA, ids=[c.__name__ for c in CRITERIA])
@pytest.mark.parametrize("scenario", IN_SUITE)
def test_drill(drills: DrillLab, scenario: str, criterion: Callable[[Report], None]) -> None:
    criterion(drills.report(scenario))


# -- the DR link: the slot keeps what the standby needs, up to its bound (README "DR link") ---------------------
def sql(dsn: str, query: str) -> int:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def write_wal(dsn: str, nbytes: int) -> int:
    """Write at least `nbytes` of WAL on the leader (1 MiB messages), then checkpoint so PostgreSQL removes every
    segment nothing retains. Returns the bytes written."""
    start = sql(dsn, "SELECT pg_current_wal_lsn() - '0/0'")
    with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
        conn.execute("INSERT INTO drill_cut VALUES (2)")  # a row the standby must have afterwards
        while sql(dsn, "SELECT pg_current_wal_lsn() - '0/0'") - start < nbytes:
            conn.execute("SELECT pg_logical_emit_message(false, 'dr', repeat('x', 1048576)) "
                         "FROM generate_series(1, 8)")
        conn.execute("CHECKPOINT")
    return sql(dsn, "SELECT pg_current_wal_lsn() - '0/0'") - start


def status(lab: Lab) -> tuple[int, dict[str, Any]]:
    from typer.testing import CliRunner

    from rolegen.cli import app

    result = CliRunner().invoke(app, ["status", "-f", "json", "--dir", str(lab.env_dir),
                                      "--kubeconfig", str(lab.kubeconfig)])
    return result.exit_code, json.loads(result.stdout)


def gold_slot(lab: Lab) -> dict[str, Any]:
    return status(lab)[1]["sites"][0]["slot"] or {}


def test_dr_link_cut_beyond_wal_keep_size_catches_up_without_reseed(drills: DrillLab) -> None:
    lab = drills.lab
    assert restore_baseline(LocalControl(lab), timeout=TIMEOUT).passed
    with psycopg.connect(lab.dsn("gold"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS drill_cut (v int)")
    standby = member_dsn(lab, "golddr", 0)
    poll(lambda: exists(standby, "drill_cut"), 20, "golddr streaming")
    poll(lambda: gold_slot(lab).get("standby_streaming"), 20, "the slot published by gold")
    lab.cut()
    try:
        written = write_wal(lab.dsn("gold"), 40 * MiB)  # wal_keep_size is 16MB
        # golddr's Patroni publishes its walreceiver's state each loop: wait for both views, never one read.
        seen: dict[str, Any] = {}

        def holding_the_cut() -> bool:
            seen.update(gold_slot(lab))
            return (seen.get("retained_bytes") or 0) >= 40 * MiB and seen.get("standby_streaming") is False

        poll(holding_the_cut, 30, "gold's slot holding the cut while golddr reports not streaming")
        assert seen["wal_status"] == "extended", seen
    finally:
        lab.heal()
    target, healed = sql(lab.dsn("gold"), "SELECT pg_current_wal_lsn() - '0/0'"), time.monotonic()
    poll(lambda: sql(standby, "SELECT pg_last_wal_replay_lsn() - '0/0'") >= target, 30, "golddr catching up")
    catch_up = time.monotonic() - healed
    assert rows(standby, "drill_cut WHERE v = 2") >= 1
    poll(lambda: status(lab)[0] == 0 and gold_slot(lab)["wal_status"] == "reserved", 20, "a healthy DR link")
    print(f"\nDR link drill 1: {written / MiB:.1f} MiB of WAL during the cut (wal_keep_size 16MB); "
          f"caught up {catch_up:.1f} s after heal, no re-seed")


def test_dr_link_cut_beyond_the_slot_bound_is_lost_and_reseeded(drills: DrillLab) -> None:
    lab = drills.lab
    assert restore_baseline(LocalControl(lab), timeout=TIMEOUT).passed
    standby = member_dsn(lab, "golddr", 0)
    lab.cut()
    try:
        written = write_wal(lab.dsn("gold"), 120 * MiB)  # the slot's bound is 64MB
        pg_wal = sql(lab.dsn("gold"), "SELECT sum(size) FROM pg_ls_waldir()")
        assert pg_wal <= (64 + 32 + 3 * 16) * MiB, f"gold's pg_wal holds {pg_wal / MiB:.0f} MiB"
    finally:
        lab.heal()
    poll(lambda: status(lab)[0] == 1 and gold_slot(lab).get("wal_status") == "lost", 30, "the slot reported lost")
    _, data = status(lab)
    assert "golddr lost its slot on gold" in data["problems"]
    assert data["sites"][0]["slot"]["next"] == "rolegen reseed --env golddr"
    from typer.testing import CliRunner

    from rolegen.cli import app

    started = time.monotonic()
    result = CliRunner().invoke(app, ["reseed", "--env", "golddr", "--yes", "--dir", str(lab.env_dir),
                                      "--kubeconfig", str(lab.kubeconfig)])
    assert result.exit_code == 0, result.output
    reseeded = time.monotonic() - started
    poll(lambda: status(lab)[0] == 0, 30, "a healthy pair after the re-seed")
    assert rows(standby, "drill_cut WHERE v = 2") >= 2  # both drills' rows, cloned from gold
    print(f"\nDR link drill 2: {written / MiB:.1f} MiB of WAL during the cut (bound 64MB); gold's pg_wal "
          f"{pg_wal / MiB:.0f} MiB; slot reported lost; rolegen reseed --env golddr took {reseeded:.1f} s")

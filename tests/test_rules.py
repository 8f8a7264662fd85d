"""The safety rules of role changes (rolegen.procedures.rules), without a cluster: which members of a fenced site
may still write, the LSN gate and the failover decision table (divergence: tests/test_divergence.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.site_states import LEADER, STANDBY, member, site

from rolegen.cluster.site_state import Member, SiteState
from rolegen.procedures.failover_rules import failover_decision, old_alive_proof
from rolegen.procedures.handover import phase
from rolegen.procedures.rules import (
    FenceMarker,
    Position,
    demotion_blockers,
    final_position,
    gate_blocker,
    lsn_text,
)


# -- which members of a fenced site may still accept writes ---------------------------------------------------
def test_a_demoted_site_has_no_blockers() -> None:
    before = site("gold", [member("g-0", "leader"), member("g-1", "replica")], holder="g-0")
    after = site("gold", [member("g-0", "standby-leader"), member("g-1", "replica")], holder="g-0", version="2")
    assert demotion_blockers(after, FenceMarker.of(before, 0.0), now=1.0) == []


def test_a_member_still_reporting_primary_blocks_and_a_silent_one_is_named_as_possibly_hung() -> None:
    before = site("gold", [member("g-0", "leader"), member("g-1", "replica")], holder="g-0")
    # g-0 never reported again (a hung Patroni: its PostgreSQL may still run as primary).
    [why] = demotion_blockers(before, FenceMarker.of(before, 0.0), now=100.0)
    assert why.startswith("g-0 last reported leader and has not reported since the fence")
    # g-1 promoted itself (a loop that read the DCS before the fence): it blocks too, until it demotes.
    after = site("gold", [member("g-0", "standby-leader"), member("g-1", "promoted")], holder="g-0", version="2")
    assert demotion_blockers(after, FenceMarker.of(before, 0.0), now=1.0) == ["g-1 last reported promoted"]


def test_a_stopped_container_cannot_write_whatever_its_last_report() -> None:
    crashed = site("gold", [member("g-0", "leader", running=False)], holder="g-0")
    assert demotion_blockers(crashed, FenceMarker.of(crashed, 0.0), now=0.1) == []


def test_the_lock_holder_must_report_standby_leader_unless_its_lock_stops_being_renewed() -> None:
    """A member restarting with its session lock reports `replica` and may promote in a loop that read the DCS
    before the fence: it blocks until it reports standby-leader — or until its lock has not moved for a ttl of
    our own clock (then it is dead)."""
    restarting = site("gold", [member("g-0", "replica")], holder="g-0", version="7")
    marker = FenceMarker.of(restarting, 10.0)
    [why] = demotion_blockers(restarting, marker, now=11.0)
    assert why == "g-0 holds the leader lock and reports replica, not standby-leader"
    renewed = site("gold", [member("g-0", "replica")], holder="g-0", version="8")
    assert demotion_blockers(renewed, marker, now=100.0) != []  # alive: still renewing
    assert demotion_blockers(restarting, marker, now=41.0) == []  # unchanged for more than ttl (30 s)


@pytest.mark.parametrize("skew", [timedelta(seconds=-60), timedelta(0), timedelta(seconds=60)])
def test_blockers_do_not_depend_on_this_machines_clock(skew: timedelta) -> None:
    """Operator and cluster clocks may differ by a minute: the verdict uses observed change only."""
    renewed = datetime.now(UTC) + skew
    hung = site("gold", [member("g-0", "leader")], holder="g-0", renewed=renewed)
    assert len(demotion_blockers(hung, FenceMarker.of(hung, 0.0), now=1000.0)) == 1
    demoted = site("gold", [member("g-0", "standby-leader")], holder="g-0", renewed=renewed, version="9")
    assert demotion_blockers(demoted, FenceMarker.of(hung, 0.0), now=1.0) == []


# -- the LSN gate -------------------------------------------------------------------------------------------
def test_final_position_is_the_furthest_the_site_may_hold() -> None:
    gold = site("gold", [member("g-0", "standby-leader", 4, 500), member("g-1", "replica", 3, 400)], optime=450)
    assert final_position(gold) == Position(500, 4)
    assert final_position(site("gold", [member("g-0", None, None, None)])) is None


@pytest.mark.parametrize(
    ("timeline", "replay", "expected"),
    [
        (4, 500, None),  # replayed it all on the same timeline
        (3, 500, None),  # a lower reported timeline: an idle walreceiver's stale report, tolerated
        (5, 500, None),  # higher: the old site's members had not reported the timeline it switched to
        (4, 499, "golddr replayed 0/1F3 of 0/1F4"),
        (None, 500, "golddr's standby leader has not reported its timeline and replay position yet"),
    ],
)
def test_gate(timeline: int | None, replay: Any, expected: str | None) -> None:
    target = site("golddr", [member("d-0", "standby-leader", timeline, 10, replay=int(replay))], holder="d-0")
    assert gate_blocker(target, Position(500, 4)) == expected


def test_gate_needs_a_standby_leader() -> None:
    target = site("golddr", [member("d-0", "leader", 4, 900)], holder="d-0")
    assert gate_blocker(target, Position(500, 4)) == "golddr has no standby leader"


def test_lsn_text_is_postgres_notation() -> None:
    assert lsn_text(83886176) == "0/5000060"
    assert lsn_text((1 << 32) + 0xA0) == "1/A0"


# -- failover decisions ---------------------------------------------------------------------------------------
TARGET = site("golddr", [member("d-0", "standby-leader", 3, 800)], holder="d-0")
OLD_DOWN = site("gold", [member("g-0", "leader", 3, 900, running=False)], config=LEADER, holder="g-0")


@pytest.mark.parametrize(
    ("target", "old", "old_leads", "decision"),
    [
        (TARGET, None, False, "promote-unreachable"),
        (TARGET, OLD_DOWN, False, "fence-first"),
        (TARGET, OLD_DOWN, True, "refuse-healthy"),
        (site("golddr", [member("d-0", None)], holder="d-0"), OLD_DOWN, False, "refuse-target"),
        (site("golddr", [member("d-0", "standby-leader", running=False)], holder="d-0"), None, False,
         "refuse-target"),
        (site("golddr", [member("d-0", "leader")], config=LEADER, holder="d-0"), None, False, "done"),
        (site("golddr", [member("d-0", "leader")], config=LEADER, holder="d-0"), OLD_DOWN, False, "fence-after"),
        (site("golddr", [member("d-0", "leader")], config=LEADER, holder="d-0"),
         site("gold", [], config=STANDBY), False, "done"),
    ],
)
def test_failover_decision_table(target: SiteState, old: SiteState | None, old_leads: bool, decision: str) -> None:
    assert failover_decision(target, old, old_leads=old_leads)[0] == decision


ALIVE = "its standby leader reports streaming from it"


@pytest.mark.parametrize(
    ("old", "alive", "old_site_down", "decision"),
    [
        (None, ALIVE, False, "refuse-alive"),  # only the operator's route to its API is down: two primaries
        (None, ALIVE, True, "promote-unreachable"),  # the operator fenced or powered it off by other means
        (None, None, False, "promote-unreachable"),
        (None, None, True, "promote-unreachable"),
        (OLD_DOWN, ALIVE, False, "fence-first"),  # its API answers: the fence makes it safe, streaming or not
        (OLD_DOWN, ALIVE, True, "fence-first"),
    ],
)
def test_failover_decision_on_the_evidence_that_the_old_site_lives(
    old: SiteState | None, alive: str | None, old_site_down: bool, decision: str
) -> None:
    got, why = failover_decision(TARGET, old, old_leads=False, alive=alive, old_site_down=old_site_down)
    assert got == decision
    if decision == "refuse-alive":
        assert why.startswith("the old site is alive: its standby leader reports streaming from it")


def dr(lsn: int, *, state: str = "running", version: str = "1", role: str = "standby-leader") -> SiteState:
    return site("golddr", [member("d-0", role, 3, lsn, state=state)], holder="d-0", version=version)


@pytest.mark.parametrize(
    ("samples", "proof"),
    [
        ([dr(800, state="streaming")], "reports streaming"),
        ([dr(800), dr(800, version="2", state="streaming")], "reports streaming"),
        ([dr(800), dr(900, version="2"), dr(1000, version="3")], "received WAL while watched (0/384 -> 0/3E8)"),
        # WAL received just before the old site failed shows in the next report: no proof.
        ([dr(800), dr(900, version="2"), dr(900, version="3")], None),
        ([dr(800, state="streaming"), dr(800, version="2"), dr(800, version="3")], None),  # it noticed: stale
        ([dr(800), dr(800, version="2"), dr(800, version="3")], None),
        ([dr(800)], None),
        ([dr(800), dr(900, role="replica")], None),  # not its standby leader's report
        ([], None),
    ],
)
def test_the_targets_own_reports_prove_the_old_site_alive(samples: list[SiteState], proof: str | None) -> None:

    found = old_alive_proof(samples)
    assert (found is None) if proof is None else (found is not None and proof in found)


@pytest.mark.parametrize(
    ("old", "target", "expected"),
    [(LEADER, STANDBY, "start"), (STANDBY, STANDBY, "demoted"), (STANDBY, LEADER, "promoted"),
     (LEADER, LEADER, "split")],
)
def test_switchover_phase_comes_from_the_two_dcs_configs(old: dict[str, Any], target: dict[str, Any],
                                                         expected: str) -> None:
    assert phase(site("gold", [], config=old), site("golddr", [], config=target)) == expected


def test_replay_gap_is_what_the_target_still_has_to_replay() -> None:
    from rolegen.procedures.rules import replay_gap

    target = site("golddr", [member("d-0", "standby-leader", 4, 10, replay=300)], holder="d-0")
    assert replay_gap(target, Position(500, 4)) == 200
    assert replay_gap(target, Position(100, 4)) == 0
    assert replay_gap(site("golddr", [member("d-0", None)], holder="d-0"), Position(500, 4)) is None


def test_a_crashed_sites_position_counts_once_it_stopped_moving_over_patroni_loops() -> None:
    """A member restarted after a crash replays its own WAL as a standby: for a moment it reports less than it
    holds. The position is final once two lock renewals (two loops of its Patroni) passed without growth."""
    from rolegen.procedures.rules import Settling

    settling = Settling()
    replaying = site("gold", [member("g-0", "standby-leader", 3, 400)], holder="g-0", version="1")
    assert settling.observe(replaying) == Position(400, 3) and not settling.settled(replaying)
    grown = site("gold", [member("g-0", "standby-leader", 3, 500)], holder="g-0", version="2")
    assert settling.observe(grown) == Position(500, 3) and not settling.settled(grown)  # moved: count again
    for version in ("3", "4"):
        same = site("gold", [member("g-0", "standby-leader", 3, 500)], holder="g-0", version=version)
        settling.observe(same)
    assert settling.settled(same)


def test_a_crashed_sites_position_waits_for_every_member_to_come_back_and_report() -> None:
    """A stopped container is not "nothing can move": its Pod remains, the kubelet restarts it, and it may hold
    acknowledged commits that were never shipped. Neither does a member that reports no LSN yet (starting,
    crash recovery) nor one whose last report, from before its crash, still says primary."""
    from rolegen.procedures.rules import Settling

    def settles(*members: Member) -> bool:
        settling = Settling()
        for version in ("1", "2", "3", "4"):
            state = site("gold", list(members), holder="g-0", version=version)
            settling.observe(state)
        return settling.settled(state)

    replica = member("g-1", "replica", 3, 480)
    assert settles(member("g-0", "standby-leader", 3, 500), replica)
    assert not settles(member("g-0", "standby-leader", 3, 500, running=False), replica)
    assert not settles(member("g-0", "standby-leader", 3, 500, running=False),
                       member("g-1", "replica", 3, 480, running=False))
    assert not settles(member("g-0", "standby-leader", 3, 500), member("g-1", None, None, None, state="starting"))
    assert not settles(member("g-0", "leader", 3, 500), replica)
    stopped = site("gold", [member("g-0", "standby-leader", 3, 500, running=False)], holder="g-0")
    assert Settling.unreported(stopped) == ["g-0"]


def test_restarted_names_members_whose_container_came_back() -> None:
    from rolegen.procedures.rules import restarted

    def with_restarts(count: int | None) -> SiteState:
        m = member("g-0", "leader")
        return site("gold", [Member(m.name, m.role, m.state, m.timeline, m.lsn, None, None, True, "x",
                                    restarts=count)])

    assert restarted(with_restarts(0), with_restarts(0)) == []
    assert restarted(with_restarts(0), with_restarts(1)) == ["g-0"]
    assert restarted(with_restarts(0), with_restarts(None)) == ["g-0"]  # unknown counts as restarted


def test_a_recreated_pod_a_vanished_or_new_member_and_a_silent_one_count_as_restarted() -> None:
    """A force-deleted Pod comes back under its name at restartCount 0: only its uid tells it apart (N5)."""
    from rolegen.procedures.rules import Settling, restarted, settle_blocker

    def pod(name: str, uid: str, role: str | None = "replica", lsn: int | None = 100) -> Member:
        return Member(name, role, "running", 3, lsn, None, None, True, "x", restarts=0, uid=uid)

    before = site("gold", [pod("g-0", "a", "leader"), pod("g-1", "b")])
    assert restarted(before, site("gold", [pod("g-0", "a", "standby-leader"), pod("g-1", "b")])) == []
    assert restarted(before, site("gold", [pod("g-0", "c", "standby-leader"), pod("g-1", "b")])) == ["g-0"]
    assert restarted(before, site("gold", [pod("g-1", "b")])) == ["g-0"]  # gone
    assert restarted(before, site("gold", [pod("g-0", "a"), pod("g-1", "b"), pod("g-2", "d")])) == ["g-2"]
    assert restarted(before, site("gold", [pod("g-0", "a", None, None), pod("g-1", "b")])) == ["g-0"]
    # The gate's verdict: a gone member blocks until its Pod is back, whatever settled meanwhile.
    settled = Settling(best=Position(100, 3), version="1", renewals=5)
    gone = site("gold", [pod("g-1", "b", "standby-leader")], holder="g-1")
    assert settle_blocker(before, gone, settled) == (
        "g-0 of gold gone: its Pod has not come back to report what it holds")
    back = site("gold", [pod("g-0", "c"), pod("g-1", "b", "standby-leader")], holder="g-1")
    assert settle_blocker(before, back, settled) is None
    assert settle_blocker(before, back, Settling()) == "g-0 restarted: gold's position has not settled yet"


def test_ahead_of_holder_names_members_past_the_lock_holder_on_its_timeline_or_later() -> None:
    from rolegen.procedures.rules import ahead_of_holder

    def golddr(*others: Member, lead_lsn: int | None = 1000) -> SiteState:
        return site("golddr", [member("d-0", "standby-leader", 3, lead_lsn), *others], holder="d-0")

    assert ahead_of_holder(golddr(member("d-1", "replica", 3, 1000))) is None  # level: nothing to lose
    assert ahead_of_holder(golddr(member("d-1", "replica", 3, 1500))) == (
        "d-1 0/5DC past d-0, golddr's lock holder, at 0/3E8")
    assert ahead_of_holder(golddr(member("d-1", "replica", 4, 1500))) is not None  # a later timeline: more still
    assert ahead_of_holder(golddr(member("d-1", "replica", None, 1500))) is not None  # unknown: counted
    assert ahead_of_holder(golddr(member("d-1", "replica", 2, 1500))) is None  # left the history: a divergence
    assert ahead_of_holder(golddr(member("d-1", None, 3, None))) is None  # reports nothing: nothing to compare
    assert ahead_of_holder(golddr(member("d-1", "replica", 3, 1500), lead_lsn=None)) is None

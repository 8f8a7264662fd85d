"""The old primary's own proof of its clean shutdown (rolegen.procedures.shutdown_proof) and what the demotion
check and the LSN gate's final position make of it (rolegen.procedures.rules): passing two seconds before Patroni
publishes anything must never pass on a report that does not prove the shutdown happened for this fence."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rolegen.cluster.control import Control
from rolegen.cluster.records import Records
from rolegen.cluster.site_state import Member, SiteState
from rolegen.procedures.rules import FenceMarker, Position, demotion_blockers, holder_unreported, shutdown_end
from rolegen.procedures.shutdown_proof import control_texts, shutdown_proof

STANDBY = {"standby_cluster": {"host": "peer", "port": 5432}, "ttl": 30}


def control(state: str, checkpoint: int, patroni: str | None = None, timeline: int = 3) -> Control:
    text = json.dumps({"state": state, "checkpoint": f"0/{checkpoint:X}", "timeline": timeline, "patroni": patroni})
    parsed = Control.from_annotations({"rolegen.io/control": text})
    assert parsed is not None
    return parsed


RUNNING = control("in production", 0x900)
STOPPED = control("shut down", 0x1400, "stopping")


def member(name: str, role: str, lsn: int | None, ctl: Control | None, status: str = "") -> Member:
    return Member(name, role, "running", 3, lsn, None, None, True, status or f"{name}:{role}:{lsn}", restarts=0,
                  uid=f"uid-{name}", control=ctl)


def site(members: list[Member], holder: str = "gold-0", version: str = "1", optime: int = 1000) -> SiteState:
    lock: dict[str, Any] = {"leader": holder, "ttl": "30", "optime": str(optime)}
    return SiteState("gold", STANDBY, "5", {"initialize": "7"}, lock, members, leader_version=version,
                     records=Records())


BEFORE = site([member("gold-0", "leader", 1000, RUNNING), member("gold-1", "replica", 1000, RUNNING)])


def test_a_clean_shutdown_by_patroni_since_the_fence_proves_where_the_data_ends() -> None:
    assert shutdown_proof(member("gold-0", "leader", 1000, STOPPED), control_texts(BEFORE)) == 0x1400


@pytest.mark.parametrize("ctl, why", [
    (control("shut down", 0x1400, "restarting"), "a restart starts it again as it was: a primary"),
    (control("shut down", 0x1400, "running"), "stopped by someone else: Patroni may start it again as a primary"),
    (control("shut down", 0x1400, None), "Patroni did not answer: no evidence"),
    (control("in production", 0x1400), "a crash leaves pg_control in production: not clean"),
    (control("shutting down", 0x1400, "stopping"), "still shutting down: commits may still be written"),
    (None, "publishes nothing"),
])
def test_anything_else_is_no_proof(ctl: Control | None, why: str) -> None:
    assert shutdown_proof(member("gold-0", "leader", 1000, ctl), control_texts(BEFORE)) is None, why


def test_a_report_that_has_not_changed_since_before_the_fence_proves_nothing_about_this_fence() -> None:
    """A shutdown from before (the publisher died since, say) cannot tell where the data ends now."""
    before = site([member("gold-0", "leader", 1000, STOPPED)])
    assert shutdown_proof(member("gold-0", "leader", 1000, STOPPED), control_texts(before)) is None


def test_the_demotion_check_passes_on_the_holders_own_proof_while_patroni_still_reports_primary() -> None:
    after = site([member("gold-0", "leader", 1000, STOPPED), member("gold-1", "replica", 1000, RUNNING)])
    assert demotion_blockers(after, FenceMarker.of(BEFORE, 0.0), now=0.5) == []


def test_without_the_proof_the_same_read_blocks() -> None:
    after = site([member("gold-0", "leader", 1000, RUNNING), member("gold-1", "replica", 1000, RUNNING)])
    assert demotion_blockers(after, FenceMarker.of(BEFORE, 0.0), now=0.5) != []


def test_another_member_reporting_primary_still_blocks() -> None:
    after = site([member("gold-0", "leader", 1000, STOPPED), member("gold-1", "leader", 1000, RUNNING)])
    [why] = demotion_blockers(after, FenceMarker.of(BEFORE, 0.0), now=0.5)
    assert "gold-1" in why


def test_a_lock_moved_to_a_member_that_is_not_yet_standby_leader_still_blocks() -> None:
    """gold-0 shut down and released its lock; gold-1 took it and reports replica: it may still become a primary
    on a view from before the fence (a Patroni switchover within the site), so it blocks until standby-leader."""
    after = site([member("gold-0", "replica", 1000, STOPPED), member("gold-1", "replica", 1000, RUNNING)],
                 holder="gold-1", version="2")
    [why] = demotion_blockers(after, FenceMarker.of(BEFORE, 0.0), now=0.5)
    assert "gold-1 holds the leader lock" in why


def test_the_final_position_is_the_shutdown_checkpoint_not_the_stale_optime() -> None:
    after = site([member("gold-0", "leader", 1000, STOPPED), member("gold-1", "replica", 1000, RUNNING)])
    end, proven = shutdown_end(after, control_texts(BEFORE))
    assert end == Position(0x1400, 3)
    assert proven == {"gold-0"}


def test_a_proven_holder_restarting_as_standby_leader_is_not_waited_for() -> None:
    """Its report without a position is PostgreSQL restarting: its data end is already proven."""
    restarting = site([member("gold-0", "standby-leader", None, control("in archive recovery", 0x1400))])
    assert holder_unreported(restarting) is not None
    assert holder_unreported(restarting, {"gold-0"}) is None

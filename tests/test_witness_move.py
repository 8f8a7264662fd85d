"""Moving the witness Lease to the site a role change promotes (rolegen.witness.move), on a witness in memory: no
write when the target holds it, a take carrying the version read, a create when absent, a Conflict read again, an
applied write whose answer was lost recognised at the next read, a witness out of reach a typed WaitTimedOut, and
any other failed read an error, never "go ahead"."""

from __future__ import annotations

import time

import pytest
from tests.fake_witness import NAME, FakeWitness, unanswered

from rolegen.cluster.kubectl import Forbidden
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.witness.lease import WitnessLease
from rolegen.witness.move import ForeignHolder, LeaseMove, WitnessNotMoved, move_lease

SITES = ("golddr", "gold")


def move(fake: FakeWitness, *, timeout: float = 2, log: list[str] | None = None) -> LeaseMove:
    lease = WitnessLease(fake, NAME, 30)  # type: ignore[arg-type]
    return move_lease(lease, "golddr", SITES, timeout=timeout, every=0.01,
                      log=(log if log is not None else []).append)


def test_a_lease_the_target_holds_already_is_not_written() -> None:
    """The standby's guard took it before it ran the failover steps."""
    fake = FakeWitness("golddr")
    moved = move(fake)
    assert fake.events == [] and moved.wrote is None
    assert moved.line() == "witness lease already golddr's: nothing to do"
    assert moved.record() == {"before": "golddr", "after": "golddr"}


@pytest.mark.parametrize("holder", ["gold", None])
def test_a_lease_of_the_old_site_or_of_nobody_is_taken_with_the_version_read(holder: str | None) -> None:
    fake = FakeWitness(holder)
    moved = move(fake)
    assert fake.events == [("witness", "take golddr at 10")]
    assert fake.holder == "golddr" and fake.obj is not None and fake.obj["spec"]["leaseTransitions"] == 3
    assert moved.line() == f"witness lease moved: {holder or 'nobody'} -> golddr"
    assert moved.record() == {"before": holder, "after": "golddr"}


def test_an_absent_lease_is_created_held_by_the_target() -> None:
    fake = FakeWitness(exists=False)
    moved = move(fake)
    assert fake.events == [("witness", "create golddr")] and fake.holder == "golddr"
    assert moved.line() == "witness lease created, held by golddr"


def test_a_conflict_is_read_again_and_the_take_carries_the_new_version() -> None:
    """The old site's guard renewed between the read and the take (a hung guard: its site is demoted)."""
    fake = FakeWitness("gold")
    fake.renewals = 1
    log: list[str] = []
    moved = move(fake, log=log)
    assert fake.events == [("witness", "take golddr at 11")] and moved.done
    assert log == ["   gold's lease changed since it was read (renewed): read again"]


def test_a_take_whose_answer_was_lost_is_seen_applied_at_the_next_read_and_not_written_twice() -> None:
    """kubectl reports a write whose answer was lost as unreachable although it was applied (docs/witness.md)."""
    fake = FakeWitness("gold")
    fake.lost_answers = 1
    moved = move(fake)
    assert fake.events == [("witness", "take golddr at 10")]
    assert moved.line() == "witness lease moved: gold -> golddr"


def test_a_witness_out_of_reach_for_the_whole_wait_is_a_typed_timeout_and_nothing_is_written() -> None:
    fake = FakeWitness("gold")
    fake.reads = [unanswered()] * 1000
    with pytest.raises(WitnessNotMoved) as caught:
        move(fake, timeout=0.1)
    assert isinstance(caught.value, WaitTimedOut) and fake.events == [] and fake.looks >= 2
    assert caught.value.message.startswith(f"the witness lease {NAME} was not moved to golddr within 0s (the "
                                           "witness did not answer: cannot reach the cluster of context witness")
    assert isinstance(caught.value.last, LeaseMove) and caught.value.last.before is None


def test_a_witness_that_answers_again_within_the_wait_is_moved() -> None:
    fake = FakeWitness("gold")
    fake.reads = [unanswered(), unanswered()]
    assert move(fake).done and fake.holder == "golddr"


def test_a_failed_read_that_is_not_a_timeout_stops_at_once_and_is_never_go_ahead() -> None:
    fake = FakeWitness("gold")
    fake.reads = [Forbidden("kubectl get lease on context witness is forbidden")] * 10
    started = time.monotonic()
    with pytest.raises(Forbidden):
        move(fake, timeout=5)
    assert time.monotonic() - started < 1 and fake.events == []


def test_a_lease_held_by_a_name_that_is_neither_site_is_not_this_pairs() -> None:
    fake = FakeWitness("silver")
    with pytest.raises(ForeignHolder, match="held by silver, neither golddr nor gold"):
        move(fake)
    assert fake.events == []


def test_the_role_change_lease_is_checked_before_the_write() -> None:
    fake = FakeWitness("gold")

    def lost() -> None:
        raise RolegenError("the lease on golddr was taken over")

    lease = WitnessLease(fake, NAME, 30)  # type: ignore[arg-type]
    with pytest.raises(RolegenError, match="taken over"):
        move_lease(lease, "golddr", SITES, timeout=1, guard=lost)
    assert fake.events == []

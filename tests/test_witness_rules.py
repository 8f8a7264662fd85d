"""The witness guards' rules (rolegen.witness.rules): directly, then model-checked over the partition matrix and
random link schedules (tests/witness_sim.py): never two writable primaries; a lost leader is replaced in time."""

from __future__ import annotations

import random

import pytest
from tests.witness_sim import Schedule, random_schedule, run

from rolegen.witness.rules import LeaderGuard, StandbyGuard, Timers

TIMERS = Timers(fence_after=30, margin=10, renew_every=5, request_timeout=4)
EVERYTHING = ["LW", "WL", "LS", "SL", "WAL"]  # every link of the leader's


def test_the_bundled_timers_hold_their_orders_and_bad_ones_are_named() -> None:
    assert TIMERS.problems() == []
    assert TIMERS.promote_after == 40
    bad = Timers(fence_after=10, margin=0, renew_every=5, request_timeout=6).problems()
    assert len(bad) == 3 and "a third of fence_after" in bad[0]


def test_the_leader_runs_while_either_lease_is_fresh_counted_from_the_request_it_sent() -> None:
    guard = LeaderGuard(TIMERS)
    assert guard.decide(0) == "fence"  # never held a lease: may not run
    guard.renewed(100)
    guard.promised(110)
    assert guard.decide(139.9) == "run" and guard.decide(140) == "fence"
    guard.renewed(90)  # a late answer to an older request extends nothing
    assert guard.held_until() == 140


def test_the_standby_waits_a_whole_promote_after_from_any_sign_of_the_leader() -> None:
    guard = StandbyGuard(TIMERS, started=0)
    kwargs = {"receiving": False, "received_lsn": 100, "published_lsn": 100, "lag_limit": 0}
    assert guard.decide(39, **kwargs)[0] == "wait"  # a fresh guard watches first
    guard.saw_lease("7", 20)
    assert guard.decide(59, **kwargs)[0] == "wait"
    guard.saw_lease("7", 50)  # the same version seen again is no sign of life
    assert guard.grant(55)
    assert guard.decide(94, **kwargs)[0] == "wait"
    action, why = guard.decide(95, **kwargs)
    assert action == "promote" and "40s" in why
    assert not guard.grant(96)  # no promise once it began to promote


def test_a_standby_that_still_receives_or_lags_beyond_the_limit_does_not_promote() -> None:
    guard = StandbyGuard(TIMERS, started=0)
    assert guard.decide(100, receiving=True, received_lsn=1, published_lsn=1, lag_limit=0)[0] == "wait"
    action, why = guard.decide(100, receiving=False, received_lsn=1000, published_lsn=5000, lag_limit=1024)
    assert action == "refuse-lag" and "4000 bytes behind" in why
    # Synchronous: no lag to measure, but only a Lease that says the leader ran synchronized lets it promote.
    for said, reason in ((None, "never said it ran synchronized"), (False, "said it ran unsynchronized")):
        action, why = guard.decide(100, receiving=False, received_lsn=None, published_lsn=None, lag_limit=None,
                                   synchronous=said)
        assert action == "refuse-lag" and reason in why
    assert guard.decide(100, receiving=False, received_lsn=None, published_lsn=None, lag_limit=None,
                        synchronous=True)[0] == "promote"


# The partition matrix of issue 23, in the model: (links down from t=20 on, failover expected).
MATRIX = {
    "leader isolated from both": (["LW", "WL", "LS", "SL", "WAL"], True),
    "standby isolated from both": (["SW", "WS", "LS", "SL", "WAL"], False),
    "witness down": (["LW", "WL", "SW", "WS"], False),
    "tunnel only": (["LS", "SL", "WAL"], False),
    "replication stream only": (["WAL"], False),
    "replication stream and the leader's witness link": (["WAL", "LW", "WL"], False),
    "leader-witness only": (["LW", "WL"], False),
    "asymmetric: standby cannot reach the witness": (["SW", "WS", "LW"], False),
    # The leader's asks cannot reach the standby: no promise, no witness: it fences, and the standby takes over.
    "leader cut from the witness, its link to the standby one-way": (["LW", "WL", "LS"], True),
    "standby cut from the witness, its link to the leader one-way": (["SW", "WS", "SL"], False),
    "leader site lost": (EVERYTHING, True),
}


@pytest.mark.parametrize("shape", sorted(MATRIX))
def test_the_partition_matrix_never_has_two_writable_primaries_and_fails_over_only_when_the_leader_is_gone(
    shape: str,
) -> None:
    links, fails_over = MATRIX[shape]
    for seed in range(10):
        out = run(Schedule([(link, 20, 1000) for link in links], until=160, late=0.0), TIMERS, seed)
        assert out.overlap == 0, (shape, seed, out.events)
        assert (out.standby_promoted_at is not None) == fails_over, (shape, seed, out.events)
        if fails_over:
            # The leader fenced itself before the standby may promote, and the failover completed within
            # fence_after + margin + a poll, a request and the promotion of the fault.
            assert out.leader_fenced_at is not None and out.standby_promoted_at is not None
            assert out.leader_fenced_at < out.standby_promoted_at
            assert out.standby_promoted_at - 20 <= TIMERS.promote_after + 1 + 4 + 2 + 0.5, out.events


def test_a_tunnel_blip_shorter_than_fence_after_and_a_flapping_tunnel_cause_no_failover() -> None:
    flapping = [(link, 20 + 10 * i, 26 + 10 * i) for i in range(10) for link in ("LS", "SL", "WAL")]
    blip = [(link, 20, 45) for link in ("LS", "SL", "WAL")] + [("LW", 30, 45), ("WL", 30, 45)]
    for down in (blip, flapping):
        for seed in range(5):
            out = run(Schedule(down, until=200, late=0.0), TIMERS, seed)
            assert out.leader_fenced_at is None and out.standby_promoted_at is None, out.events


def test_random_link_schedules_with_late_messages_never_make_two_writable_primaries() -> None:
    rng = random.Random(23)
    failovers = fences = 0
    for index in range(60):
        schedule = random_schedule(rng)
        schedule.late = 0.05
        out = run(schedule, TIMERS, seed=index)
        assert out.overlap == 0, (index, schedule.down, out.events)
        failovers += out.standby_promoted_at is not None
        fences += out.leader_fenced_at is not None
    assert failovers >= 5 and fences > failovers  # the schedules did reach both decisions, and fences alone


def test_the_model_has_teeth_a_standby_that_ignores_the_leaders_promises_promotes_beside_a_live_leader() -> None:
    """Without the promise the leader keeps through the DR link, a leader cut from the witness whose replication
    stream broke (the guards still talk) would see the standby promote while it runs on the tunnel's evidence:
    the model must see that."""

    class WitnessOnly(StandbyGuard):
        def grant(self, at: float) -> bool:
            return not self.promoting  # answers, but remembers nothing

    broken = Schedule([("LW", 20, 1000), ("WL", 20, 1000), ("WAL", 20, 1000)], until=120, late=0.0)
    out = run(broken, TIMERS, seed=1, standby=WitnessOnly)
    assert out.overlap > 0  # two writable primaries until the leader, refused its promises, fenced itself
    out = run(broken, TIMERS, seed=1)  # the rules as they are: the promise holds the standby back
    assert out.overlap == 0 and out.leader_fenced_at is None and out.standby_promoted_at is None

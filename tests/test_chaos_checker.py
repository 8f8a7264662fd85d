"""The chaos checker on synthetic observations: each invariant reports what breaks it, and only that; the fault
model's excuses (a site loss's window, --accept-data-loss) are counted apart, never silently dropped."""

from __future__ import annotations

from rolegen_lab.drills.chaos.checker import Final, Observations, PvcDeletion, RunSeen, check

GOOD_FINAL = Final("gold", True, 0, {"gold": {"live": "leader", "declared": "leader"},
                                     "golddr": {"live": "standby-leader", "declared": "standby-leader"}})


def clean(**changes: object) -> Observations:
    obs = Observations(acknowledged=[1, 2, 3, 4], acknowledged_at=[1.0, 2.0, 3.0, 4.0],
                       acknowledged_by=["gold", "gold", "golddr", "golddr"], missing=set(),
                       final=Final(**vars(GOOD_FINAL)))
    for key, value in changes.items():
        setattr(obs, key, value)
    return obs


def invariants(obs: Observations) -> list[str]:
    return [v.invariant for v in check(obs).violations]


def test_a_clean_schedule_passes() -> None:
    verdict = check(clean())
    assert verdict.passed and verdict.lost == verdict.excused == verdict.accepted == []


def test_a_missing_acknowledged_write_is_a_violation() -> None:
    verdict = check(clean(missing={3}))
    assert [v.invariant for v in verdict.violations] == ["lost-write"]
    assert verdict.lost == [3] and "3 at 3.00s" in verdict.violations[0].detail


def test_writes_that_cannot_be_counted_are_a_violation_not_a_pass() -> None:
    assert invariants(clean(missing=None)) == ["lost-write"]


def test_a_site_loss_excuses_only_the_lost_sites_last_unshipped_writes() -> None:
    # gold lost at 2.5 s: its write at 2.0 s may not have shipped; its write at 1.0 s had time to; golddr's 3.0 s
    # write was acknowledged by the surviving site and is never excused.
    verdict = check(clean(missing={1, 2, 3}, site_losses=[(2.5, 2.5, "gold")]))
    assert verdict.excused == [2]
    assert verdict.lost == [1, 3]


def test_a_write_the_lost_site_acknowledged_while_the_loss_was_under_way_is_excused() -> None:
    # The loss began at 1.5 s and the lab reported it done at 2.6 s (its members died in between): gold's write at
    # 2.0 s may not have shipped (seed 436 of the chaos bench lost such a write: acknowledged 40 ms into the loss).
    verdict = check(clean(missing={2}, site_losses=[(1.5, 2.6, "gold")]))
    assert verdict.excused == [2] and verdict.passed


def test_accept_data_loss_losses_are_counted_apart() -> None:
    # failover --to golddr --accept-data-loss ended at 2.5 s: gold's earlier writes may be gone, by choice;
    # golddr's own writes, and anything after the run, are not excused.
    verdict = check(clean(missing={1, 2, 3}, accepted=[(2.5, "golddr")]))
    assert verdict.accepted == [1, 2]
    assert verdict.lost == [3]
    assert [v.invariant for v in verdict.violations] == ["lost-write"]


def test_two_writable_primaries_and_a_timeline_chosen_twice() -> None:
    obs = clean(dual_primaries=[(5.0, ["gold/patroni-0", "golddr/patroni-0"])],
                timelines={"gold": [("patroni-0", 3)], "golddr": [("patroni-1", 3), ("patroni-0", 4)]})
    assert invariants(obs) == ["two-primaries", "timeline-twice"]
    assert invariants(clean(timelines={"gold": [("patroni-0", 3)], "golddr": [("patroni-0", 4)]})) == []


def test_a_pvc_deleted_needs_a_writable_primary_on_the_other_site_at_that_moment() -> None:
    gone = [PvcDeletion("golddr", "data-patroni-0", 10.0, 11.0)]
    proven = clean(pvc_deletions=gone, writable=[(9.0, ["gold/patroni-0"]), (10.5, ["gold/patroni-0"])])
    assert invariants(proven) == []
    unproven = clean(pvc_deletions=gone, writable=[(3.0, ["gold/patroni-0"]), (10.5, ["golddr/patroni-1"])])
    assert invariants(unproven) == ["pvc-unproven"]


def test_rolegen_runs_end_with_exit_0_or_a_hint_and_never_a_traceback() -> None:
    runs = [
        RunSeen(("switchover", "--to", "golddr"), 1, 2, 0),
        RunSeen(("failover", "--to", "golddr"), 1, 2, 1, output=("error: gold leads", "hint: rolegen switchover")),
        RunSeen(("status", "-f", "json"), 1, 2, 1, output=('{"healthy": false}',)),  # status: 1 = unhealthy
        RunSeen(("switchover", "--to", "gold"), 1, 2, None, killed=True),  # SIGKILLed on purpose
    ]
    assert invariants(clean(runs=runs)) == []
    bad = [RunSeen(("failback", "--to", "gold"), 1, 2, 1, output=("error: something",)),
           RunSeen(("apply", "--env", "gold"), 1, 2, 1, output=("Traceback (most recent call last):", "KeyError",
                                                                 "hint: re-run")),
           RunSeen(("reseed", "--env", "golddr"), 1, 2, None)]
    verdict = check(clean(runs=bad))
    assert [v.invariant for v in verdict.violations] == ["rolegen-exit"] * 3
    assert "without a hint" in verdict.violations[0].detail and "traceback" in verdict.violations[1].detail
    assert "did not end" in verdict.violations[2].detail


def test_after_recovery_one_leads_the_other_streams_status_is_0_and_the_specs_agree() -> None:
    assert invariants(clean(final=Final(None, False, 1, GOOD_FINAL.roles))) == ["not-recovered"] * 2
    assert invariants(clean(final=Final("gold", False, 0, GOOD_FINAL.roles))) == ["not-recovered"]
    disagree = {"gold": {"live": "standby-leader", "declared": "leader"},
                "golddr": {"live": "leader", "declared": "standby-leader"}}
    verdict = check(clean(final=Final("golddr", True, 0, disagree)))
    assert [v.detail for v in verdict.violations] == [
        "the specs disagree with the live roles: gold: live standby-leader, declared leader; "
        "golddr: live leader, declared standby-leader"]

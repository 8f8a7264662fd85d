"""Pair health (rolegen.cluster.health): the predicates status and the switchover's preflight share."""

from __future__ import annotations

from dataclasses import replace

from tests.test_slot_status import MiB, leader, standby

from rolegen.cluster.health import (
    MAX_LAG_BYTES,
    caught_up,
    lag_over_bound,
    not_streaming,
    replay_lag,
    system_ids_differ,
)


def test_lag_is_what_the_standby_still_has_to_replay_and_the_bound_is_shared() -> None:
    lead, follower = leader(100 * MiB, None), standby(90 * MiB, streaming=True)
    assert replay_lag(follower, lead) == 10 * MiB and caught_up(follower, lead)
    assert lag_over_bound(follower, lead) is None
    far = standby(100 * MiB - MAX_LAG_BYTES - 1, streaming=True)
    assert lag_over_bound(far, lead) == MAX_LAG_BYTES + 1 and not caught_up(far, lead)


def test_an_unknown_lag_is_never_caught_up() -> None:
    lead = leader(100 * MiB, None)
    silent = standby(90 * MiB, streaming=True)
    silent = replace(silent, members=[replace(silent.members[0], replay_lsn=None)])
    assert replay_lag(silent, lead) is None and not caught_up(silent, lead)


def test_a_standby_leader_that_does_not_stream_says_what_it_reports() -> None:
    assert not_streaming(standby(1, streaming=True)) is None
    assert not_streaming(standby(1, streaming=False)) == "standby leader running"
    assert not_streaming(leader(1, None)) is None  # a leader streams from nobody


def test_system_ids_differ_only_when_both_sites_report_one() -> None:
    gold, golddr = leader(1, None), standby(1, streaming=True)
    assert not system_ids_differ(gold, golddr)
    other = replace(golddr, config_annotations={"initialize": "9999"})
    assert system_ids_differ(gold, other)
    assert not system_ids_differ(gold, replace(golddr, config_annotations={}))

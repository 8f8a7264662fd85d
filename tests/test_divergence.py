"""Whether a site's data can still follow the leader's, and which repair it needs (procedures/divergence.py):
timeline histories, the members' reports, and rolegen's promotion and fence records."""

from __future__ import annotations

from typing import Any

from tests.site_states import LEADER, member, site

from rolegen.cluster.records import Records
from rolegen.cluster.site_state import SiteState
from rolegen.procedures.divergence import divergence


def leader_site(timeline: int = 4, *, history: list[list[Any]] | None = None, promotion: dict[str, Any] | None = None
                ) -> SiteState:
    return site("golddr", [member("d-0", "leader", timeline, 9000)], config=LEADER, holder="d-0",
                history=history, records=Records("1", promotion=promotion))


PROMOTION = {"id": "gold->golddr@3/800", "from": "gold", "timeline_before": 3, "lsn": 800, "timeline": 4}


def test_a_follower_on_the_leaders_timeline_is_not_diverged_without_any_promotion_record() -> None:
    gold = site("gold", [member("g-0", "standby-leader", 4, 9000, state="streaming")], holder="g-0")
    assert divergence(gold, leader_site()) is None


def test_the_same_timeline_number_ending_at_different_lsns_needs_a_reseed() -> None:
    gold = site("gold", [member("g-0", "standby-leader", 4, 900)], holder="g-0", history=[[3, 850, "no recovery"]])
    found = divergence(gold, leader_site(history=[[3, 800, "no recovery"]]))
    assert found is not None and found.repair == "reseed"
    assert "timeline 3 ended at 0/352 on gold but at 0/320 on golddr" in found.reason


def test_a_site_past_the_leaders_timeline_promoted_on_its_own() -> None:
    gold = site("gold", [member("g-0", "leader", 5, 900)], holder="g-0")
    found = divergence(gold, leader_site())
    assert found is not None and found.repair == "reseed" and "timeline 5, past golddr's 4" in found.reason


def test_a_colliding_timeline_number_without_a_history_annotation_is_caught_by_the_records() -> None:
    """The crash-restart failover that lost a quarter of the writes: gold's restarted member promoted to the
    same timeline number as golddr and never wrote `history`. Nothing proves gold reached timeline 4 by
    following: DIVERGED. With the fence record of this very promotion (every member below 4, none writable),
    the same state is a healthy follower."""
    gold_members = [member("g-0", "standby-leader", 4, 900, state="streaming")]
    no_record = site("gold", gold_members, holder="g-0")
    found = divergence(no_record, leader_site(promotion=PROMOTION))
    assert found is not None and found.repair == "reseed" and "colliding timeline number" in found.reason

    fence = {"leader": "golddr", "promotion": PROMOTION["id"], "max_timeline": 3, "writers": []}
    proven = site("gold", gold_members, holder="g-0", records=Records("1", fence=fence))
    assert divergence(proven, leader_site(promotion=PROMOTION)) is None

    for bad in ({**fence, "max_timeline": 4}, {**fence, "writers": ["g-0"]}, {**fence, "promotion": "other"}):
        unproven = site("gold", gold_members, holder="g-0", records=Records("1", fence=bad))
        assert divergence(unproven, leader_site(promotion=PROMOTION)) is not None


def test_an_unfenced_old_site_reporting_its_old_timeline_is_diverged_from_the_first_read() -> None:
    """A CI run saw it: gold restarted after a failover rolegen did not fence, its standby leader not streaming
    yet and reporting its restartpoint's timeline (3). Status read "not diverged", then "diverged" seconds
    later once it named 4. Nothing fenced gold before the promotion: its report cannot clear it, at any
    timeline. With this promotion's fence record the same report is a lagging follower; a writable member
    reporting 3 is exact, and past the switch point it needs a rewind (different timeline numbers)."""
    stale = site("gold", [member("g-0", "standby-leader", 3, 700)], holder="g-0")
    found = divergence(stale, leader_site(promotion=PROMOTION))
    assert found is not None and found.repair == "reseed" and "nothing proves gold" in found.reason

    fence = {"leader": "golddr", "promotion": PROMOTION["id"], "max_timeline": 3, "writers": []}
    fenced = site("gold", [member("g-0", "standby-leader", 3, 700)], holder="g-0", records=Records("1", fence=fence))
    assert divergence(fenced, leader_site(promotion=PROMOTION)) is None

    writer = site("gold", [member("g-0", "leader", 3, 900)], holder="g-0")
    found = divergence(writer, leader_site(promotion=PROMOTION, history=[[3, 800, "no recovery"]]))
    assert found is not None and found.repair == "rewind"


def test_a_timeline_number_the_old_site_reached_before_the_promotion_is_a_collision() -> None:
    """A restarted gold member promoted itself to 4 while golddr, on 3, was promoted to 4 too (with
    --accept-data-loss). The promotion records what golddr left (3) and what gold reached (4) apart: the fence
    record (every gold member seen on 4 <= timeline_before, had it been max(3, 4)) cannot hide the reuse."""
    promotion = {**PROMOTION, "old_timeline": 4}
    fence = {"leader": "golddr", "promotion": PROMOTION["id"], "max_timeline": 3, "writers": []}
    gold = site("gold", [member("g-0", "standby-leader", 4, 900, state="streaming")], holder="g-0",
                records=Records("1", fence=fence))
    found = divergence(gold, leader_site(promotion=promotion))
    assert found is not None and found.repair == "reseed"
    assert "gold had reached timeline 4 before golddr was promoted onto timeline 4" in found.reason
    assert divergence(gold, leader_site(promotion={**PROMOTION, "old_timeline": 3})) is None


def test_a_resumed_switchover_finds_a_target_that_left_the_old_sites_history_without_a_leading_site() -> None:
    """Both sites are standbys (the run was killed after the demotion): the old site is the reference. A target
    on a timeline the old site never reached promoted on its own; the same timeline number ending at two LSNs
    is a reuse. Neither needs a leader to be seen."""
    demoted = site("gold", [member("g-0", "standby-leader", 3, 900)], holder="g-0",
                   history=[[1, 100, "no recovery"], [2, 500, "no recovery"]])
    promoted_alone = site("golddr", [member("d-0", "standby-leader", 4, 950)], holder="d-0")
    found = divergence(promoted_alone, demoted)
    assert found is not None and found.repair == "reseed" and "timeline 4, past gold's 3" in found.reason
    reused = site("golddr", [member("d-0", "standby-leader", 3, 900)], holder="d-0",
                  history=[[1, 100, "no recovery"], [2, 480, "no recovery"]])
    found = divergence(reused, demoted)
    assert found is not None and "the same timeline number was used twice" in found.reason
    follows = site("golddr", [member("d-0", "standby-leader", 3, 900)], holder="d-0",
                   history=[[1, 100, "no recovery"], [2, 500, "no recovery"]])
    assert divergence(follows, demoted) is None


def test_wal_past_the_switchpoint_on_an_older_timeline_is_repaired_by_rewind() -> None:
    gold = site("gold", [member("g-0", "leader", 3, 900)], config=LEADER, holder="g-0")
    found = divergence(gold, leader_site(history=[[3, 800, "no recovery"]]))
    assert found is not None and found.repair == "rewind"
    assert "holds WAL up to 0/384 on timeline 3, past 0/320 where golddr's timeline 4 began" in found.reason
    behind = site("gold", [member("g-0", "standby-leader", 3, 700)], holder="g-0")
    assert divergence(behind, leader_site(history=[[3, 800, "no recovery"]])) is None
    # A standby with an idle walreceiver reports its last restartpoint's timeline (stale, lower) and an LSN
    # already on the next one: not evidence of anything (seen on the lab after a switchover).
    stale = site("gold", [member("g-0", "standby-leader", 3, 900, state="in archive recovery")], holder="g-0")
    assert divergence(stale, leader_site(history=[[3, 800, "no recovery"]])) is None

"""Unplanned failover (rolegen.procedures.failover) against fake sites: it decides on evidence (the old site's API
retried for a ttl; a target that still hears from the old site refuses), decides again after the prompt, never
passes the catch-up gate on nothing, records the timelines apart, and asks before it fences."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rolegen.cluster.kubectl import ClusterUnreachable, Forbidden
from rolegen.cluster.records import Records
from rolegen.cluster.site_state import Member, SiteState
from rolegen.errors import RolegenError
from rolegen.offline.spec import Spec
from rolegen.procedures import failover
from rolegen.procedures.base import Pair, load_pair

STANDBY = {"standby_cluster": {"host": "peer", "port": 5432}, "ttl": 30}
LEADER = {"ttl": 30}
Read = SiteState | Exception


def member(name: str, role: str | None, timeline: int | None = 3, lsn: int | None = 1000, *,
           state: str = "running", running: bool | None = True, replay: int | None = None) -> Member:
    return Member(name, role, state, timeline, lsn, None, replay if replay is not None else lsn, running,
                  f"{name}:{role}:{timeline}:{lsn}:{state}")


def site(env: str, members: list[Member], *, config: dict[str, Any] | None = None, version: str = "1",
         records: Records | None = None) -> SiteState:
    lock = {"leader": members[0].name, "ttl": "30"} if members else {}
    return SiteState(env, config if config is not None else STANDBY, "5", {"initialize": "7"}, lock, members,
                     leader_version=version, records=records or Records())


def target(*, state: str = "running", lsn: int = 1000, version: str = "1", timeline: int = 3) -> SiteState:
    return site("golddr", [member("d-0", "standby-leader", timeline, lsn, state=state)], version=version)


class Sites:
    """Scripted reads per site (the last one repeats) and every write a procedure asks for."""

    def __init__(self, pair: Pair, golddr: list[Read], gold: list[Read]) -> None:
        self.scripts: dict[str, list[Read]] = {"golddr": golddr, "gold": gold}
        self.writes: list[tuple[str, str]] = []
        self.promotions: list[dict[str, Any]] = []
        pair.read = self.read  # type: ignore[method-assign]
        pair.read_both = lambda: (self.read(pair.to), self.read(pair.other))  # type: ignore[method-assign]
        pair.write_role = self.write_role  # type: ignore[method-assign]
        pair.unslot = lambda state: state  # type: ignore[method-assign]
        pair.demote = self.demote  # type: ignore[method-assign]
        pair.record = lambda *a, **k: None  # type: ignore[method-assign]
        pair.record_promotion = self.record_promotion  # type: ignore[method-assign]

    def read(self, spec: Spec) -> SiteState:
        script = self.scripts[spec.environment]
        item = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(item, Exception):
            raise item
        return item

    def write_role(self, spec: Spec, role: str, state: SiteState, **_: Any) -> None:
        self.writes.append((spec.environment, role))
        if role == "leader":  # the promoted target leads from now on
            self.scripts[spec.environment] = [site(spec.environment, [member("d-0", "leader", 4)], config=LEADER)]

    def demote(self, spec: Spec, state: SiteState, timeout: float, **_: Any) -> SiteState:
        self.writes.append((spec.environment, "fence"))
        return state

    def record_promotion(self, target_state: SiteState, **kwargs: Any) -> str:
        self.promotions.append(kwargs)
        return "gold->golddr"


@pytest.fixture
def pair(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Pair:
    monkeypatch.setattr(failover, "record_roles", lambda *a, **k: None)
    return load_pair(workdir / "environments", "golddr", log=lambda _: None)


def unreachable() -> ClusterUnreachable:
    return ClusterUnreachable("cannot reach the cluster of context gold: connection refused")


class Asked(Exception):
    pass


def asked(questions: list[str]) -> Any:
    def confirm(question: str) -> None:
        questions.append(question)
        raise Asked

    return confirm


# -- N2: the old site is "not answering" only on evidence ------------------------------------------------------
def test_a_target_streaming_from_the_old_site_refuses_a_failover_without_a_fence(pair: Pair) -> None:
    """The operator's route to gold's API is down, gold runs: golddr streams from it. Promoting would make two
    primaries (the issue's first reproduction); refused, naming --old-site-down."""
    sites = Sites(pair, [target(state="streaming")], [unreachable()])
    with pytest.raises(RolegenError, match="the old site is alive: its standby leader reports streaming") as info:
        failover.run(pair, confirm=lambda _: None, timeout=0.3)
    assert info.value.hint and "--old-site-down" in info.value.hint
    assert sites.writes == []


def test_a_target_receiving_wal_while_watched_refuses_too(pair: Pair) -> None:
    samples: list[Read] = [target(lsn=1000 + 100 * n, version=str(n)) for n in range(20)]
    sites = Sites(pair, samples, [unreachable()])
    with pytest.raises(RolegenError, match="received WAL while watched"):
        failover.run(pair, confirm=lambda _: None, timeout=1.0)
    assert sites.writes == []


def test_old_site_down_promotes_although_the_target_still_streams(pair: Pair) -> None:
    sites = Sites(pair, [target(state="streaming")], [unreachable()])
    result = failover.run(pair, confirm=lambda _: None, timeout=0.3, old_site_down=True)
    assert result.promoted and result.decision == "promote-unreachable"
    assert sites.writes == [("golddr", "leader")]


def test_one_failed_read_of_the_old_site_is_retried_and_then_it_is_fenced_first(pair: Pair) -> None:
    old = site("gold", [member("g-0", "leader", running=False)], config=LEADER)
    Sites(pair, [target()], [unreachable(), unreachable(), old])
    questions: list[str] = []
    with pytest.raises(Asked):
        failover.run(pair, confirm=asked(questions), timeout=5)
    assert questions == ["Fail over to golddr (the old site's API answers: fence it first, then promote)?"]


def test_a_refused_read_of_the_old_site_stops_the_failover(pair: Pair) -> None:
    sites = Sites(pair, [target()], [Forbidden("kubectl get configmaps,pods on context gold is forbidden")])
    with pytest.raises(Forbidden):
        failover.run(pair, confirm=lambda _: None, timeout=0.3)
    assert sites.writes == []


def test_a_silent_old_site_whose_target_hears_nothing_is_promoted_with_the_fence_pending(pair: Pair) -> None:
    sites = Sites(pair, [target()], [unreachable()])
    result = failover.run(pair, confirm=lambda _: None, timeout=0.3)
    assert result.promoted and not result.fenced and result.fence_command
    assert sites.writes == [("golddr", "leader")]


# -- decided again after the prompt ----------------------------------------------------------------------------
def test_a_decision_changed_during_the_prompt_stops_before_any_write(pair: Pair) -> None:
    sites = Sites(pair, [target()], [unreachable()])
    old = site("gold", [member("g-0", "leader", running=False)], config=LEADER)

    def gold_answers_again(_: str) -> None:  # the operator's VPN came back while the prompt waited
        sites.scripts["gold"] = [old]

    with pytest.raises(RolegenError, match=r"was promote-unreachable .* it is now fence-first") as info:
        failover.run(pair, confirm=gold_answers_again, timeout=0.3)
    assert "nothing was changed" in info.value.message and sites.writes == []


# -- N4: nothing reported is not "caught up" -------------------------------------------------------------------
def fenced_gold(*, lsn: int | None, timeline: int | None = 3, version: str = "1") -> SiteState:
    return site("gold", [member("g-0", "standby-leader", timeline, lsn)], version=version)


def test_an_old_site_whose_pods_report_no_position_is_not_caught_up(pair: Pair) -> None:
    sites = Sites(pair, [target()], [fenced_gold(lsn=None)])
    with pytest.raises(RolegenError, match="no member of gold has reported a position yet") as info:
        failover.run(pair, confirm=lambda _: None, timeout=0.3)
    assert "nothing was promoted" in info.value.message
    assert sites.writes == [("gold", "fence")]


def test_an_old_site_without_pods_has_nothing_to_wait_for_and_says_so(pair: Pair) -> None:
    lines: list[str] = []
    pair.log = lines.append
    sites = Sites(pair, [target()], [site("gold", [], config=LEADER)])
    assert failover.run(pair, confirm=lambda _: None, timeout=0.3).promoted
    assert sites.writes == [("gold", "fence"), ("golddr", "leader")]
    assert any("gold has no Pods" in line for line in lines)


def test_a_failed_read_during_the_catch_up_stops_the_failover(pair: Pair) -> None:
    # Read at the preflight and again after the prompt; then its API drops during the catch-up.
    sites = Sites(pair, [target()], [fenced_gold(lsn=2000), fenced_gold(lsn=2000), unreachable()])
    with pytest.raises(ClusterUnreachable):
        failover.run(pair, confirm=lambda _: None, timeout=5)
    assert ("golddr", "leader") not in sites.writes


# -- the target's own members: its lock holder must hold what they report -----------------------------------------
def two_members(lead_lsn: int, other_lsn: int, *, other_timeline: int = 3, version: str = "1") -> SiteState:
    """golddr with its lock holder d-0 and a replica d-1 (e.g. golddr's old primary, back after a fence)."""
    return site("golddr", [member("d-0", "standby-leader", 3, lead_lsn, state="streaming"),
                           member("d-1", "replica", other_timeline, other_lsn)], version=version)


def test_a_target_whose_replica_holds_more_than_its_lock_holder_is_not_promoted(pair: Pair) -> None:
    """golddr's old primary d-1 came back past d-0, which took the lock while it was down: promoting d-0 would
    rewind d-1's last commits away. Refused, naming the Pod to restart and the data-loss option."""
    sites = Sites(pair, [two_members(1000, 1500)], [site("gold", [], config=LEADER)])
    with pytest.raises(RolegenError, match=r"would discard WAL its own members hold \(d-1 0/5DC past d-0, "
                       r"golddr's lock holder, at 0/3E8\); nothing was promoted") as info:
        failover.run(pair, confirm=lambda _: None, timeout=0.3)
    assert info.value.hint is not None
    assert re.search(r"kubectl --context golddr -n \S+ delete pod d-0;", info.value.hint)
    assert "rolegen failover --to golddr" in info.value.hint
    assert "--accept-data-loss" in info.value.hint
    assert ("golddr", "leader") not in sites.writes
    # Asked to lose it: promoted.
    sites = Sites(pair, [two_members(1000, 1500)], [site("gold", [], config=LEADER)])
    assert failover.run(pair, confirm=lambda _: None, timeout=0.3, accept_data_loss=True).promoted


def test_a_replicas_report_newer_than_its_lock_holders_is_waited_out(pair: Pair) -> None:
    """Patroni publishes each member once per loop: the holder's last report may predate WAL its replica
    already reports. Its next report (the target is woken) clears it."""
    reads: list[Read] = [two_members(1000, 1500)] * 3 + [two_members(1500, 1500, version="2")]
    sites = Sites(pair, reads, [site("gold", [], config=LEADER)])
    assert failover.run(pair, confirm=lambda _: None, timeout=5).promoted
    assert ("golddr", "leader") in sites.writes


def test_a_member_left_behind_on_an_older_timeline_is_not_the_targets_to_keep(pair: Pair) -> None:
    """A member still on an older timeline with a larger LSN number left the holder's history: that is a
    divergence (rules.divergence, repaired by Patroni's rewind), not WAL the holder should have."""
    sites = Sites(pair, [two_members(1000, 1500, other_timeline=2)], [site("gold", [], config=LEADER)])
    assert failover.run(pair, confirm=lambda _: None, timeout=0.3).promoted
    assert ("golddr", "leader") in sites.writes


# -- N11: what the target left and what the old site reached are recorded apart ------------------------------
def test_the_promotion_records_the_targets_own_timeline_and_the_old_sites_apart(pair: Pair) -> None:
    """A restarted gold member promoted itself to timeline 4 while golddr was on 3: the record must say golddr
    left 3 (it will choose 4 too) and gold reached 4, not max(3, 4) = 4 as "left", which hid the collision."""
    gold = [fenced_gold(lsn=1000, timeline=4, version=str(v)) for v in range(1, 6)]
    sites = Sites(pair, [target(timeline=3)], gold)
    assert failover.run(pair, confirm=lambda _: None, timeout=5).promoted
    [recorded] = sites.promotions
    assert recorded["timeline_before"] == 3 and recorded["old_timeline"] == 4


# -- fence-after asks first ----------------------------------------------------------------------------------------
def test_fencing_an_old_site_after_the_promotion_asks_first(pair: Pair) -> None:
    leads = site("golddr", [member("d-0", "leader", 4)], config=LEADER)
    old = site("gold", [member("g-0", "leader", running=False)], config=LEADER)
    sites = Sites(pair, [leads], [old])
    questions: list[str] = []
    with pytest.raises(Asked):
        failover.run(pair, confirm=asked(questions), timeout=0.3)
    assert questions == ["golddr already leads: fence gold (standby_cluster -> golddr)?"]
    assert sites.writes == []


def test_an_old_site_that_answers_only_when_the_fence_is_attempted_is_asked_about_too(pair: Pair) -> None:
    leads = site("golddr", [member("d-0", "leader", 4)], config=LEADER)
    old = site("gold", [member("g-0", "leader", running=False)], config=LEADER)
    sites = Sites(pair, [leads], [unreachable(), unreachable(), old])
    questions: list[str] = []
    with pytest.raises(Asked):
        failover.run(pair, confirm=asked(questions), timeout=0.05)
    assert questions == ["golddr already leads: fence gold (standby_cluster -> golddr)?"]
    assert sites.writes == []


def test_one_failed_read_while_watching_the_old_lock_does_not_make_a_leading_site_dead(pair: Pair) -> None:
    """gold leads and renews its lock; one read during the watch fails. That is no evidence: the watch goes on,
    sees the renewal, and the failover is refused (use switchover)."""
    leading = [site("gold", [member("g-0", "leader")], config=LEADER, version=str(v)) for v in (1, 2)]
    sites = Sites(pair, [target()], [leading[0], unreachable(), leading[1]])
    with pytest.raises(RolegenError, match="gold is alive and leading"):
        failover.run(pair, confirm=lambda _: None, timeout=5)
    assert sites.writes == []

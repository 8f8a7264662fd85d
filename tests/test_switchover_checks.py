"""A switchover without a cluster (fake reads): its preflight refuses a paused Patroni, or a leader nothing proves
alive, before any write, and its LSN gate waits for a member whose Pod was deleted and recreated (restartCount 0
again, reporting nothing at first) to report everything it holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.test_wake import FakeCluster, body

from rolegen.cluster.control import Control
from rolegen.cluster.records import Records
from rolegen.cluster.site_state import Member, SiteState
from rolegen.errors import RolegenError
from rolegen.procedures import failback, handover, switchover, switchover_checks
from rolegen.procedures.base import Pair, load_pair
from rolegen.procedures.rules import Position
from rolegen.procedures.wake import toggled

ENVIRONMENTS = Path(__file__).resolve().parent.parent / "environments"
STANDBY = {"ttl": 30, "standby_cluster": {"host": "patroni-master-gold", "port": 5432, "primary_slot_name": "golddr"}}
LEADER = {"ttl": 30, "slots": {"golddr": {"type": "physical", "cluster_type": "primary"}}}


def _pair(to: str) -> Pair:
    pair = load_pair(ENVIRONMENTS, to, log=lambda _: None)

    def no_write(*_: Any, **__: Any) -> None:
        pytest.fail("a write before the preflight passed")

    for name in ("write_role", "unslot", "record", "demote", "record_promotion"):
        setattr(pair, name, no_write)
    return pair


def member(name: str, role: str | None, lsn: int | None, *, replay: int | None = None, uid: str = "",
           restarts: int = 0, state: str = "running") -> Member:
    return Member(name, role, state, None if lsn is None else 3, lsn, None, replay, True,
                  f"{name}:{role}:{lsn}", restarts=restarts, uid=uid or f"uid-{name}")


def site(env: str, config: dict[str, Any], members: list[Member], *, version: str = "1",
         optime: int | None = None) -> SiteState:
    lock = {"leader": members[0].name, "ttl": "30"} | ({"optime": str(optime)} if optime is not None else {})
    return SiteState(env, config, "5", {"initialize": "7"}, lock, members, leader_version=version,
                     records=Records())


def gold(**config: Any) -> SiteState:
    return site("gold", LEADER | config, [member("gold-0", "leader", 1000)])


def golddr(config: dict[str, Any] = STANDBY) -> SiteState:
    return site("golddr", config, [member("golddr-0", "standby-leader", 1000, replay=1000, state="streaming")])


# -- the preflight -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("old_state", "target_state", "refusal"), [
    (gold(pause=True), golddr(), "gold is paused (Patroni maintenance mode"),
    (gold(), golddr(STANDBY | {"pause": True}), "golddr is paused (Patroni maintenance mode"),
])
def test_a_switchover_refuses_a_time_bomb_before_it_asks_or_writes(old_state: SiteState, target_state: SiteState,
                                                                  refusal: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A paused Patroni acts on no role change: demoting it leaves its primary running under a standby config
    (issue #21: the switchover timed out, status said healthy, the next resume was an outage)."""
    pair = _pair("golddr")
    monkeypatch.setattr(pair, "read_both", lambda: (target_state, old_state))
    with pytest.raises(RolegenError, match="preflight failed") as caught:
        switchover.run(pair, confirm=lambda _: pytest.fail("asked to confirm"), timeout=1)
    assert refusal in caught.value.message and caught.value.hint.startswith("nothing was changed")


UNSLOTTED = {"ttl": 30, "standby_cluster": {"host": "patroni-master-gold", "port": 5432}}


@pytest.mark.parametrize("t_config", [STANDBY, UNSLOTTED])
def test_the_same_pair_without_a_time_bomb_passes_the_preflight(t_config: dict[str, Any],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A target without its DR slot is what a run killed right after its first write leaves (drill
    killed-rolegen): the re-run must go on, not refuse (status reports the missing slot)."""
    pair = _pair("golddr")
    monkeypatch.setattr(pair, "read_both", lambda: (golddr(t_config), gold()))
    asked: list[str] = []

    def confirm(question: str) -> None:
        asked.append(question)
        raise RolegenError("declined")

    with pytest.raises(RolegenError, match="declined"):
        switchover.run(pair, confirm=confirm, timeout=1)
    assert asked == ["Switch over from gold to golddr?"]


def test_a_resumed_switchover_refuses_a_paused_site(monkeypatch: pytest.MonkeyPatch) -> None:
    """Demoted while paused: gold's DCS config says standby, its Patroni still runs the primary."""
    pair = _pair("golddr")
    demoted = site("gold", STANDBY | {"pause": True}, [member("gold-0", "leader", 1000)])
    monkeypatch.setattr(pair, "read_both", lambda: (golddr(), demoted))
    with pytest.raises(RolegenError, match="cannot resume the switchover: gold is paused") as caught:
        switchover.run(pair, confirm=lambda _: pytest.fail("asked to confirm"), timeout=1)
    assert "patronictl -c /etc/patroni/patroni.yml resume" in caught.value.message


def test_failback_refuses_a_paused_site_before_it_fences(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _pair("gold")
    cur = site("golddr", {"ttl": 30, "pause": True}, [member("golddr-0", "leader", 2000)])
    back = site("gold", STANDBY, [member("gold-0", "standby-leader", 1000, replay=1000)])
    monkeypatch.setattr(pair, "read", lambda spec: cur if spec.environment == "golddr" else back)
    with pytest.raises(RolegenError, match="preflight failed: golddr is paused"):
        failback.run(pair, method="auto", confirm=lambda _: pytest.fail("asked to confirm"), timeout=1)


# -- the proof the old leader is alive, right before the demotion --------------------------------------------------
def _short_ttl(state: SiteState, version: str, *, running: bool = True) -> SiteState:
    lock = {**state.leader_annotations, "ttl": "1"}
    members = [replace(m, container_running=running) for m in state.members]
    return replace(state, leader_annotations=lock, leader_version=version, members=members)


@pytest.mark.parametrize("later", [
    pytest.param(lambda: _short_ttl(gold(), "1"), id="lock-never-renewed"),
    pytest.param(lambda: _short_ttl(gold(), "2", running=False), id="renewed-but-the-holder-stopped"),
])
def test_a_switchover_from_a_leader_nothing_proves_alive_refuses_before_it_writes(
        later: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chaos: gold's members killed, their Pods' last reports still say leader and golddr's walreceiver still
    says streaming (until wal_receiver_timeout). A demotion "observed" on a dead site and a gate on its last
    reported LSN would promote without what gold acknowledged after that report: a failover's loss under a planned
    move's promise. Only a lock renewed while watched proves gold alive."""
    pair = _pair("golddr")
    first = _short_ttl(gold(), "1")
    monkeypatch.setattr(pair, "read_both", lambda: (golddr(), first))
    monkeypatch.setattr(pair, "read", lambda _: later())
    with pytest.raises(RolegenError, match="gold's leader did not renew its lock") as caught:
        switchover.run(pair, confirm=lambda _: None, timeout=1)
    assert caught.value.hint.startswith("nothing was changed")
    assert "rolegen failover --to golddr" in caught.value.hint


def test_a_lock_renewed_while_watched_lets_the_switchover_demote(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _pair("golddr")
    reads = iter([_short_ttl(gold(), "1"), _short_ttl(gold(), "1"), _short_ttl(gold(), "2")])
    monkeypatch.setattr(pair, "read_both", lambda: (golddr(), _short_ttl(gold(), "1")))
    monkeypatch.setattr(pair, "read", lambda _: next(reads))

    def demoting(*_: Any, **__: Any) -> None:
        raise RolegenError("reached the demotion")

    monkeypatch.setattr(pair, "unslot", demoting)  # the demotion step's first write
    with pytest.raises(RolegenError, match="reached the demotion"):
        switchover.run(pair, confirm=lambda _: None, timeout=1)


def test_the_old_leader_is_woken_to_renew_now_not_after_its_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patroni renews its lock once per loop_wait (10 s in the bundled specs): the proof would wait up to a loop.
    The preflight wakes gold's Patroni instead: its config rewritten with the same JSON (one trailing space), from
    the resourceVersion it read, so a configuration changed meanwhile is never overwritten."""
    pair = _pair("golddr")
    cluster = FakeCluster()
    text = json.dumps(LEADER)
    old = replace(_short_ttl(gold(), "1"), config_annotations={"initialize": "7", "config": text})
    reads = iter([old, replace(old, leader_version="2")])
    monkeypatch.setattr(pair, "read_both", lambda: (golddr(), old))
    monkeypatch.setattr(pair, "read", lambda _: next(reads))
    monkeypatch.setattr(pair, "cluster", lambda _: cluster)

    def demoting(*_: Any, **__: Any) -> None:
        raise RolegenError("reached the demotion")

    monkeypatch.setattr(pair, "unslot", demoting)
    with pytest.raises(RolegenError, match="reached the demotion"):
        switchover.run(pair, confirm=lambda _: None, timeout=1)
    assert cluster.calls[0][:3] == ("patch", "configmap", "patroni-config")
    assert body(cluster.calls[0])["metadata"] == {"annotations": {"config": toggled(text)}, "resourceVersion": "5"}
    assert json.loads(toggled(text)) == LEADER


def _with_config(state: SiteState, config: dict[str, Any]) -> SiteState:
    return replace(state, config_annotations={"initialize": "7", "config": json.dumps(config)})


def _lagging(replay: int, version: str = "1") -> SiteState:
    return _with_config(site("golddr", STANDBY, [member("golddr-0", "standby-leader", replay, replay=replay,
                                                        state="streaming")], version=version), STANDBY)


def test_a_lag_over_the_bound_between_two_reports_a_loop_apart_is_read_again_fresh(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load with loop_wait 10, golddr's last report may trail gold's by a loop's WAL (114 MiB under pgbench on
    the lab). Both Patronis are woken (their configs rewritten with the same JSON) and the lag judged on their
    fresh reports: within the bound, the switchover goes on."""
    pair = _pair("golddr")
    clusters = {"gold": FakeCluster(), "golddr": FakeCluster()}
    far = 1000 + 120 * 2**20
    leading = _with_config(site("gold", LEADER, [member("gold-0", "leader", far)]), LEADER)
    reads = iter([(_lagging(1000), leading), (_lagging(far - 2**20, "2"), leading)])
    monkeypatch.setattr(pair, "read_both", lambda: next(reads))
    monkeypatch.setattr(pair, "cluster", lambda spec: clusters[spec.environment])
    old, target = switchover_checks.within_lag(pair, leading, _lagging(1000), timeout=5)
    assert target.leader_member is not None and target.leader_member.replay_lsn == far - 2**20
    assert old is leading
    for env, config in (("gold", LEADER), ("golddr", STANDBY)):  # each woken, from what was read
        first = clusters[env].calls[0]
        assert body(first)["metadata"] == {"annotations": {"config": toggled(json.dumps(config))},
                                           "resourceVersion": "5"}


def test_a_lag_still_over_the_bound_in_fresh_reports_refuses_before_any_write(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _pair("golddr")
    clusters = {"gold": FakeCluster(), "golddr": FakeCluster()}
    far = 1000 + 120 * 2**20
    leading = _with_config(site("gold", LEADER, [member("gold-0", "leader", far)]), LEADER)
    monkeypatch.setattr(pair, "read_both", lambda: (_lagging(1000), leading))
    monkeypatch.setattr(pair, "cluster", lambda spec: clusters[spec.environment])
    with pytest.raises(RolegenError, match=f"golddr lags {far - 1000} bytes behind .* in both sites' fresh "
                       "reports") as caught:
        switchover_checks.within_lag(pair, leading, _lagging(1000), timeout=0.5)
    assert (caught.value.hint or "").startswith("nothing was changed")


def test_a_lag_within_the_bound_costs_no_read_and_no_nudge(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _pair("golddr")
    monkeypatch.setattr(pair, "read_both", lambda: pytest.fail("read again"))
    monkeypatch.setattr(pair, "cluster", lambda _: pytest.fail("nudged"))
    assert switchover_checks.within_lag(pair, gold(), golddr()) == (gold(), golddr())


# -- the LSN gate ----------------------------------------------------------------------------------------------------
class Quiet:
    """wake.Nudger's interface, without writes."""

    def seen(self, _: SiteState) -> None:
        pass

    def maybe(self) -> None:
        pass


def _reads(states: list[tuple[SiteState, SiteState]]) -> Iterator[tuple[SiteState, SiteState]]:
    yield from states
    while True:
        yield states[-1]


@pytest.mark.parametrize("seen_gone", [True, False])
def test_the_gate_waits_for_a_recreated_pod_to_report_what_it_holds(seen_gone: bool,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """gold-0 (hung) was force-deleted during the switchover: its replica took the lock at 1000, the target
    replayed 1000. The recreated Pod starts at restartCount 0 and reports nothing at first; then, replaying its own
    WAL, 1500: acknowledged commits nobody had shipped. The gate must pass at 1500, never at 1000."""
    pair = _pair("golddr")
    replica = member("gold-1", "replica", 990)
    before = site("gold", LEADER, [member("gold-0", "leader", 1000, uid="a"), replica], optime=1000)

    def old(version: str, *members: Member) -> SiteState:
        return site("gold", STANDBY, [member("gold-1", "standby-leader", 1000), *members], version=version,
                    optime=1000)

    def target(replay: int) -> SiteState:
        return site("golddr", STANDBY, [member("golddr-0", "standby-leader", replay, replay=replay)])

    reads = [(target(1000), old("2"))] if seen_gone else []  # gold-0 gone, not recreated yet
    reads += [
        (target(1000), old("3", member("gold-0", None, None, uid="c"))),  # recreated: restartCount 0, no report
        (target(1000), old("4", member("gold-0", "replica", 1500, uid="c"))),  # its own WAL replayed
    ]
    reads += [(target(1500), old(v, member("gold-0", "replica", 1500, uid="c"))) for v in ("5", "6", "7")]
    feed = _reads(reads)
    monkeypatch.setattr(pair, "read_both", lambda: next(feed))
    final, _ = handover._gate(pair, old("1"), 5, before, Quiet())  # type: ignore[arg-type]
    assert final == Position(1500, 3)


def test_the_gate_waits_for_a_one_member_sites_own_report_not_its_stale_optime(monkeypatch: pytest.MonkeyPatch) -> None:
    """golddr's only member keeps the lock through its demotion, and Patroni writes no optime then: the lock still
    says 1000 (its last loop) while commits up to 1400 were acknowledged before the shutdown checkpoint. Its first
    report as standby leader comes while PostgreSQL restarts (no position); the target has replayed 1000 only
    (its walreceiver was restarting when golddr shut down). Passing then lost those commits (drills killed-rolegen
    and hung-patroni); the gate must wait for golddr's own position, 1400, and for the target to replay it."""
    pair = _pair("gold")
    before = site("golddr", LEADER, [member("golddr-0", "leader", 1000)], optime=1000)

    def old(version: str, lsn: int | None) -> SiteState:
        return site("golddr", STANDBY, [member("golddr-0", "standby-leader", lsn)], version=version, optime=1000)

    def target(replay: int) -> SiteState:
        return site("gold", STANDBY, [member("gold-0", "standby-leader", replay, replay=replay)])

    reads = [(target(1000), old("2", None)), (target(1000), old("3", None)), (target(1000), old("4", 1400)),
             (target(1400), old("5", 1400))]
    feed = _reads(reads)
    monkeypatch.setattr(pair, "read_both", lambda: next(feed))
    final, _ = handover._gate(pair, old("1", None), 5, before, Quiet())  # type: ignore[arg-type]
    assert final.lsn == 1400


def _stopped(lsn: int, patroni: str = "stopping") -> Control:
    text = json.dumps({"state": "shut down", "checkpoint": f"0/{lsn:X}", "timeline": 3, "patroni": patroni})
    control = Control.from_annotations({"rolegen.io/control": text})
    assert control is not None
    return control


def test_the_gate_takes_the_old_primarys_shutdown_checkpoint_before_patroni_reports_anything(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """golddr's only member shut down for its demotion and says so itself (its pg_control: shut down at 1400,
    while its Patroni was stopping it); Patroni still reports it leader at 1000 with the lock's optime 1000 (its
    two one-second waits). The gate passes once the target replayed 1400: not at 1000, and without waiting for
    Patroni's own report of the restarted standby leader."""
    pair = _pair("gold")
    before = site("golddr", LEADER, [member("golddr-0", "leader", 1000)], optime=1000)
    demoted = site("golddr", STANDBY, [replace(member("golddr-0", "leader", 1000), control=_stopped(1400))],
                   optime=1000)

    def target(replay: int) -> SiteState:
        return site("gold", STANDBY, [member("gold-0", "standby-leader", replay, replay=replay)])

    feed = _reads([(target(1000), demoted), (target(1200), demoted), (target(1400), demoted)])
    monkeypatch.setattr(pair, "read_both", lambda: next(feed))
    final, target_state = handover._gate(pair, demoted, 5, before, Quiet())  # type: ignore[arg-type]
    assert final.lsn == 1400
    assert target_state.members[0].replay_lsn == 1400


def test_a_shutdown_for_a_restart_is_no_final_position(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same report with Patroni `restarting`: PostgreSQL comes back as it was, a primary. The gate must not
    take 1400 as final; it waits for Patroni's own report (here: the restarted standby leader at 1500)."""
    pair = _pair("gold")
    before = site("golddr", LEADER, [member("golddr-0", "leader", 1000)], optime=1000)
    restarting = replace(member("golddr-0", "standby-leader", None), control=_stopped(1400, "restarting"))
    reported = replace(member("golddr-0", "standby-leader", 1500), control=_stopped(1400, "restarting"))

    def target(replay: int) -> SiteState:
        return site("gold", STANDBY, [member("gold-0", "standby-leader", replay, replay=replay)])

    old = site("golddr", STANDBY, [restarting], optime=1000)
    feed = _reads([(target(1400), old), (target(1400), site("golddr", STANDBY, [reported], optime=1000)),
                   (target(1500), site("golddr", STANDBY, [reported], optime=1000))])
    monkeypatch.setattr(pair, "read_both", lambda: next(feed))
    final, _ = handover._gate(pair, old, 5, before, Quiet())  # type: ignore[arg-type]
    assert final.lsn == 1500

"""Switchover, failover and failback move the witness Lease to the site they promote, before the promotion is
written (fake sites, a witness in memory): mode automatic stops the role change before its promotion when the
Lease cannot be moved (a switchover promotes its old leader back, the Lease still or again that site's; a
failover promotes nothing); mode manual warns and goes on; a pair without a witness has no such step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.fake_witness import FakeWitness, unanswered, witnessed
from tests.test_failover import Sites, site, target
from tests.test_failover import unreachable as old_unreachable

from rolegen.cluster.records import Records
from rolegen.cluster.site_state import SiteState
from rolegen.errors import RolegenError
from rolegen.offline.spec import Spec
from rolegen.procedures import failback, failover, handover, switchover
from rolegen.procedures.base import Pair, load_pair
from rolegen.procedures.steps import Step

ENVIRONMENTS = Path(__file__).resolve().parent.parent / "environments"
STANDBY = {"ttl": 30, "standby_cluster": {"host": "peer", "port": 5432}}
MOVE = "Move the witness lease to golddr"


def _titles(steps: list[Step[Any]]) -> list[str]:
    return [step.title for step in steps]


def _standby(env: str) -> SiteState:
    return SiteState(env, STANDBY, "5", {"initialize": "7"}, {}, [], leader_version="1", records=Records())


# -- switchover (the handover: failback's switch back runs the same steps) --------------------------------------
class Handover:
    """A switchover resumed after the demotion (both sites standby), its demotion, gate and verification stubbed:
    what runs for real is the witness step, the promotion write and, on failure, the rollback."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fake: FakeWitness | None, mode: str = "automatic") -> None:
        self.log: list[str] = []
        self.writes: list[Any] = fake.events if fake is not None else []
        pair = load_pair(ENVIRONMENTS, "golddr", log=self.log.append)
        self.pair = witnessed(pair, fake, mode) if fake is not None else pair
        states = (_standby("golddr"), _standby("gold"))
        monkeypatch.setattr(pair, "read_both", lambda: states)
        monkeypatch.setattr(pair, "write_role", self.write_role)
        for name in ("check", "_demote", "_wait_for_gate", "_verify", "_record"):
            monkeypatch.setattr(handover, name, lambda run: None)

    def write_role(self, spec: Spec, role: str, state: SiteState, **_: Any) -> None:
        self.writes.append((spec.environment, role))

    def run(self) -> None:
        switchover.run(self.pair, confirm=lambda _: None, timeout=0.3)


def test_a_switchover_moves_the_lease_after_the_gate_and_before_the_promotion(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWitness("gold")
    run = Handover(monkeypatch, fake)
    run.run()
    assert run.writes == [("witness", "take golddr at 10"), ("golddr", "leader")]
    assert "[4/7] Move the witness lease to golddr" in run.log and "[5/7] Promote golddr" in run.log
    assert "   witness lease moved: gold -> golddr" in run.log
    assert run.pair.witness_record == {"before": "gold", "after": "golddr"}


def test_a_lease_the_target_holds_already_is_not_written(monkeypatch: pytest.MonkeyPatch) -> None:
    run = Handover(monkeypatch, FakeWitness("golddr"))
    run.run()
    assert run.writes == [("golddr", "leader")]
    assert "   witness lease already golddr's: nothing to do" in run.log


def test_a_conflict_is_read_again_and_the_switchover_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWitness("gold")
    fake.renewals = 1
    run = Handover(monkeypatch, fake)
    run.run()
    assert run.writes == [("witness", "take golddr at 11"), ("golddr", "leader")]


def test_automatic_with_the_witness_out_of_reach_promotes_the_old_leader_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing promoted the target; the Lease was never taken, so gold's guard still holds it."""
    fake = FakeWitness("gold")
    fake.reads = [unanswered()] * 1000
    run = Handover(monkeypatch, fake)
    with pytest.raises(RolegenError) as caught:
        run.run()
    assert run.writes == [("gold", "leader"), ("golddr", "standby-leader")] and fake.holder == "gold"
    message = caught.value.message
    assert message.startswith("the witness lease patroni-pair was not moved to golddr within 0s (the witness did "
                              "not answer")
    assert message.endswith("golddr's guard would refuse its promotion (mode automatic); gold was promoted back")
    assert "   witness lease not moved: promoting gold back" in run.log


def test_manual_with_the_witness_out_of_reach_warns_and_promotes(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWitness("gold")
    fake.reads = [unanswered()] * 1000
    run = Handover(monkeypatch, fake, mode="manual")
    run.run()
    assert run.writes == [("golddr", "leader")]
    [warning] = [line for line in run.log if line.startswith("   warning: ")]
    assert "mode manual: nothing refuses the promotion, it goes on" in warning
    assert """patch lease patroni-pair --type merge -p '{"spec":{"holderIdentity":"golddr"}}'""" in warning
    record = run.pair.witness_record or {}
    assert record["before"] is None and record["after"] is None and "was not moved" in record["error"]


def test_manual_with_a_lease_of_another_pair_warns_and_promotes(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWitness("silver")
    run = Handover(monkeypatch, fake, mode="manual")
    run.run()
    assert run.writes == [("golddr", "leader")] and fake.holder == "silver"
    assert any("held by silver, neither golddr nor gold" in line for line in run.log if "warning: " in line)


def test_automatic_with_a_lease_of_another_pair_stops_before_the_promotion(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a wait that ran out: no rollback either; the run stops where it is and a re-run resumes."""
    run = Handover(monkeypatch, FakeWitness("silver"))
    with pytest.raises(RolegenError, match="held by silver, neither golddr nor gold"):
        run.run()
    assert run.writes == []


def test_a_rollback_gives_the_lease_back_to_the_old_site_before_promoting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """An earlier run moved the Lease, then its gate ran out: gold's pre_promote needs the Lease to be gold's."""
    fake = FakeWitness("golddr")
    run = Handover(monkeypatch, fake)
    with pytest.raises(RolegenError, match="gold was promoted back"):
        handover._roll_back(run.pair, "golddr did not replay gold's final LSN", "gate not reached", "retry")
    assert run.writes == [("witness", "take gold at 10"), ("gold", "leader"), ("golddr", "standby-leader")]


def test_a_pair_without_a_witness_has_no_witness_step(monkeypatch: pytest.MonkeyPatch) -> None:
    run = Handover(monkeypatch, None)
    assert MOVE not in _titles(switchover.steps(run.pair))
    run.run()
    assert run.writes == [("golddr", "leader")] and "[4/6] Promote golddr" in run.log


# -- failover ------------------------------------------------------------------------------------------------------
@pytest.fixture
def pair(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Pair:
    monkeypatch.setattr(failover, "record_roles", lambda *a, **k: None)
    return load_pair(workdir / "environments", "golddr", log=lambda _: None)


def _failover(pair: Pair, fake: FakeWitness, gold: Any, mode: str = "automatic") -> tuple[Sites, list[str]]:
    sites = Sites(pair, [target()], [gold])
    sites.writes = fake.events
    lines: list[str] = []
    witnessed(pair, fake, mode).log = lines.append
    return sites, lines


def test_a_failover_moves_the_lease_after_the_fence_and_before_the_promotion(pair: Pair) -> None:
    fake = FakeWitness("gold")
    sites, _ = _failover(pair, fake, site("gold", [], config={"ttl": 30}))
    assert failover.run(pair, confirm=lambda _: None, timeout=0.3).promoted
    assert sites.writes == [("gold", "fence"), ("witness", "take golddr at 10"), ("golddr", "leader")]


def test_a_failover_with_the_old_site_silent_moves_the_lease_too(pair: Pair) -> None:
    """Taking the Lease is what fences a live old leader's guard."""
    fake = FakeWitness("gold")
    sites, _ = _failover(pair, fake, old_unreachable())
    assert failover.run(pair, confirm=lambda _: None, timeout=0.3).promoted
    assert sites.writes == [("witness", "take golddr at 10"), ("golddr", "leader")]


def test_a_failover_the_standbys_guard_runs_finds_the_lease_its_own_and_writes_nothing_there(pair: Pair) -> None:
    fake = FakeWitness("golddr")  # the guard took it before it ran the failover steps
    sites, lines = _failover(pair, fake, old_unreachable())
    assert failover.run(pair, confirm=lambda _: None, timeout=0.3).promoted
    assert sites.writes == [("golddr", "leader")] and "   witness lease already golddr's: nothing to do" in lines


def test_automatic_failover_with_the_witness_out_of_reach_promotes_nothing(pair: Pair) -> None:
    fake = FakeWitness("gold")
    fake.reads = [unanswered()] * 1000
    sites, _ = _failover(pair, fake, old_unreachable())
    with pytest.raises(RolegenError) as caught:
        failover.run(pair, confirm=lambda _: None, timeout=0.3)
    assert sites.writes == [] and sites.promotions == []
    assert caught.value.message.endswith("golddr's guard would refuse its promotion (mode automatic); gold's API did "
                                         "not answer; nothing was promoted")
    assert "re-run rolegen failover --to golddr" in (caught.value.hint or "")


def test_manual_failover_with_the_witness_out_of_reach_warns_and_promotes(pair: Pair) -> None:
    fake = FakeWitness("gold")
    fake.reads = [unanswered()] * 1000
    sites, lines = _failover(pair, fake, old_unreachable(), mode="manual")
    assert failover.run(pair, confirm=lambda _: None, timeout=0.3).promoted
    assert sites.writes == [("golddr", "leader")] and any(line.startswith("   warning: ") for line in lines)


def test_the_promotion_record_keeps_the_witness_holder_before_and_after(pair: Pair,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[dict[str, Any]] = []
    monkeypatch.setattr(pair, "record", lambda spec, key, value, seen=None: written.append(value))
    pair.witness_record = {"before": "gold", "after": "golddr"}
    pair.record_promotion(target(), timeline_before=3, fenced_first=False, link=False)
    assert written[0]["witness"] == {"before": "gold", "after": "golddr"}


# -- failback: its switch back is the handover, in its one numbering ----------------------------------------------
def test_failbacks_runbook_moves_the_lease_between_its_gate_and_its_promotion() -> None:
    pair = witnessed(load_pair(ENVIRONMENTS, "gold", log=lambda _: None), FakeWitness("golddr"))
    titles = _titles(failback.steps(pair))
    assert titles[-5:] == ["Wait for the LSN gate", "Move the witness lease to gold", "Promote gold", "Verify",
                           "Record the new roles"]
    runbook = failback.dry_run(pair)
    assert "\n8. Move the witness lease to gold\n" in runbook and "\n9. Promote gold\n" in runbook
    assert "   golddr is promoted back and the run fails.\n" in runbook
    plain = load_pair(ENVIRONMENTS, "gold", log=lambda _: None)
    assert "Move the witness lease to gold" not in _titles(failback.steps(plain))

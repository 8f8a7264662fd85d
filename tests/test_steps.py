"""Procedures as steps (rolegen.procedures.steps), without a cluster: the runner, the runbook printed from the
same Step objects `run()` executes, which steps a resumed or decided run still runs, and the failback method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rolegen.cluster.records import Records
from rolegen.cluster.site_state import SiteState
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.procedures import failback, failover, handover, reseed, switchover
from rolegen.procedures.base import Pair, load_pair
from rolegen.procedures.repair import Method
from rolegen.procedures.steps import Step, execute, runbook

ENVIRONMENTS = Path(__file__).resolve().parent.parent / "environments"


def _pair(to: str) -> Pair:
    return load_pair(ENVIRONMENTS, to, log=lambda _: None)


# -- the runner ---------------------------------------------------------------------------------------------------
def test_runbook_numbers_every_step_and_prints_its_condition() -> None:
    steps: list[Step[None]] = [
        Step("Preflight", "Read both sites.", lambda _: None),
        Step("Rewind", "pg_rewind.\nThen stream.", lambda _: None, when="method rewind/auto"),
    ]
    assert runbook("Demo", steps) == (
        "Demo:\n1. Preflight\n   Read both sites.\n2. Rewind (method rewind/auto)\n   pg_rewind.\n   Then stream.\n"
    )


def test_execute_logs_and_runs_the_steps_that_apply_in_order_and_skips_the_others_silently() -> None:
    done: list[str] = []
    log: list[str] = []
    steps: list[Step[list[str]]] = [
        Step("One", "", lambda ran: ran.append("one")),
        Step("Two", "", lambda ran: ran.append("two"), lambda ran: False, when="never"),
        Step("Three", "", lambda ran: ran.append("three"), lambda ran: ran == ["one"]),
    ]
    execute(steps, done, log.append)
    assert done == ["one", "three"]
    assert log == ["[1/3] One", "[3/3] Three"]  # the number is the runbook's; the condition is not logged


def test_applies_is_asked_when_the_step_is_reached_so_an_earlier_step_can_change_the_way() -> None:
    state = {"method": "rewind"}

    def fall_back(s: dict[str, str]) -> None:
        s["method"] = "reseed"

    steps: list[Step[dict[str, str]]] = [
        Step("Rewind", "", fall_back, lambda s: s["method"] == "rewind"),
        Step("Re-seed", "", lambda s: None, lambda s: s["method"] == "reseed"),
    ]
    log: list[str] = []
    execute(steps, state, log.append)
    assert log == ["[1/2] Rewind", "[2/2] Re-seed"]


def test_a_failing_step_stops_the_run_where_it_is_raised() -> None:
    def boom(_: None) -> None:
        raise RolegenError("gate not reached")

    log: list[str] = []
    steps: list[Step[None]] = [Step("Gate", "", boom), Step("Promote", "", lambda _: pytest.fail("promoted"))]
    with pytest.raises(RolegenError, match="gate not reached"):
        execute(steps, None, log.append)
    assert log == ["[1/2] Gate"]


# -- run() executes the very steps --dry-run prints --------------------------------------------------------------
def _state(env: str, *, leader: bool) -> SiteState:
    config: dict[str, Any] = {"ttl": 30} if leader else {"ttl": 30, "standby_cluster": {"host": "peer", "port": 5432}}
    return SiteState(env, config, "5", {"initialize": "7"}, {}, [], leader_version="1", records=Records())


class Ran(Exception):
    pass


@pytest.mark.parametrize(
    ("module", "to", "kwargs"),
    [
        (switchover, "golddr", {}),
        (failover, "golddr", {}),
        (failback, "gold", {"method": "auto"}),
        (reseed, "golddr", {}),
    ],
)
def test_run_executes_the_steps_the_dry_run_prints(module: Any, to: str, kwargs: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _pair(to)
    # A switchover reads both sites before its steps (a run that finds the target leading is "Not changed").
    monkeypatch.setattr(pair, "read_both", lambda: (_state("golddr", leader=False), _state("gold", leader=True)))
    executed: list[str] = []

    def record(steps: list[Step[Any]], context: Any, log: Any) -> None:
        executed.extend(f"{step.heading}\n" + "".join(f"   {line}\n" for line in step.detail.splitlines())
                        for step in steps)
        raise Ran

    monkeypatch.setattr(module, "execute", record)
    with pytest.raises(Ran):
        module.run(pair, confirm=lambda _: None, **kwargs)
    printed = module.dry_run(pair).split("\n", 1)[1]
    assert "".join(f"{n}. {text}" for n, text in enumerate(executed, 1)) == printed


# -- which steps a run still runs ---------------------------------------------------------------------------------
def _titles(steps: list[Step[Any]], context: Any) -> list[str]:
    return [step.title for step in steps if step.applies(context)]


@pytest.mark.parametrize(
    ("where", "titles"),
    [
        ("start", ["Preflight", "Demote gold", "Wait for the LSN gate", "Promote golddr", "Verify",
                   "Record the new roles"]),
        ("demoted", ["Preflight", "Demote gold", "Wait for the LSN gate", "Promote golddr", "Verify",
                     "Record the new roles"]),
        ("promoted", ["Preflight", "Verify", "Record the new roles"]),
    ],
)
def test_a_resumed_switchover_skips_what_the_killed_run_did(where: str, titles: list[str]) -> None:
    pair = _pair("golddr")
    result = switchover.SwitchoverResult("golddr", "gold")
    context = handover.Handover(pair, lambda _: None, 60, result, where, _state("gold", leader=True),
                                _state("golddr", leader=False))
    assert _titles(switchover.steps(pair), context) == titles


@pytest.mark.parametrize(
    ("decision", "titles"),
    [
        ("fence-first", ["Preflight", "Fence gold first", "Catch up", "Promote golddr", "Record the new roles"]),
        ("promote-unreachable", ["Preflight", "Promote golddr", "Record the new roles"]),
        ("fence-after", ["Preflight", "Record the new roles"]),  # already promoted: fencing is part of recording
        ("done", ["Preflight", "Record the new roles"]),
    ],
)
def test_a_failover_runs_the_steps_its_decision_allows(decision: Any, titles: list[str]) -> None:
    pair = _pair("golddr")
    context = failover._Run(pair, lambda _: None, 60, False, failover.FailoverResult("golddr", "gold"), decision)
    assert _titles(failover.steps(pair), context) == titles


@pytest.mark.parametrize(("method", "falls_back"), [("auto", True), ("rewind", False)])
def test_a_rewind_that_does_not_converge_falls_back_to_reseed_only_under_auto(
    method: Method, falls_back: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = _pair("gold")
    context = failback._Run(pair, method, lambda _: None, 1, failback.FailbackResult("gold"))

    def not_converging(_: Pair) -> None:
        raise WaitTimedOut("timed out after 1s waiting for gold to stream from golddr")

    monkeypatch.setattr(failback, "_ensure_scaled", not_converging)
    if falls_back:
        failback._rewind(context)
        assert context.chosen == "reseed"
        # the handover's steps apply once the switch back's preflight started it
        titles = ["Preflight", "Fence gold", "Re-seed", "Switch over back to gold: preflight"]
        assert _titles(failback.steps(pair), context) == titles
    else:
        with pytest.raises(RolegenError, match="timed out"):
            failback._rewind(context)


def test_a_wait_that_runs_out_raises_its_own_type_with_what_it_waited_for() -> None:

    pair = Pair.__new__(Pair)  # wait() uses only the log
    pair.log = lambda _line: None
    with pytest.raises(WaitTimedOut) as caught:
        Pair.wait(pair, "the moon", lambda: False, timeout=0.05, every=0.01)
    assert caught.value.what == "the moon" and "timed out" in caught.value.message
    # chaos seeds 6, 18, 19: a wait that ran out reached the user without a next command
    assert caught.value.hint is not None and "rolegen status" in caught.value.hint


def test_an_error_inside_a_wait_is_never_a_timeout() -> None:
    from rolegen.cluster.kubectl import ClusterUnreachable

    def check() -> bool:
        raise ClusterUnreachable("no route to the API")

    pair = Pair.__new__(Pair)
    pair.log = lambda _line: None
    with pytest.raises(ClusterUnreachable) as caught:
        Pair.wait(pair, "anything", check, timeout=5)
    assert not isinstance(caught.value, WaitTimedOut)


def test_a_failback_that_finds_its_switch_back_under_way_resumes_it_and_repairs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failback that failed after demoting golddr (both sites standby, nobody leads) is re-run, as its hint
    says: it resumes the switch back as a switchover resumes, instead of refusing for want of a leader."""
    pair = _pair("gold")
    states = {"gold": _state("gold", leader=False), "golddr": _state("golddr", leader=False)}
    monkeypatch.setattr(pair, "read", lambda spec: states[spec.environment])
    asked: list[str] = []
    context = failback._Run(pair, "auto", asked.append, 1, failback.FailbackResult("gold"))
    failback._check(context)
    assert context.resuming and asked == ["Continue the switch back from golddr to gold?"]
    assert _titles(failback.steps(pair), context) == ["Preflight", "Switch over back to gold: preflight"]
    context.handover = handover.Handover(pair, lambda _: None, 1, switchover.SwitchoverResult("gold", "golddr"),
                                         "demoted", states["golddr"], states["gold"])
    assert _titles(failback.steps(pair), context) == [
        "Preflight", "Switch over back to gold: preflight", "Demote golddr", "Wait for the LSN gate", "Promote gold",
        "Verify", "Record the new roles"]


def test_a_value_read_before_the_step_that_sets_it_names_itself() -> None:
    """Typed step contexts: a later step reads what an earlier one set, and a runbook whose order is wrong fails
    naming what was missing (never a bare assert, never a None passed on)."""
    from rolegen.procedures.steps import Later, StepOrderError

    seen: Later[int] = Later("the target as the preflight read it")
    with pytest.raises(StepOrderError, match="the target as the preflight read it was read before the step"):
        seen.get()
    assert seen.set(7) == 7 and seen.get() == 7

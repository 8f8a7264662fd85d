"""Scenario definitions: each one is runnable data whose expectations encode the fault model's promise. They are
written in roles (leader, standby) and checked here as a drill runs them on the bundled environments (resolved:
gold leads, golddr follows); the last tests check the resolution itself."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.errors import UsageError
from rolegen.offline.workspace import load_workspace
from rolegen_lab.control.channel import OPS, request_message
from rolegen_lab.drills.catalog import scenario
from rolegen_lab.drills.scenarios import SCENARIOS as WRITTEN
from rolegen_lab.drills.steps import (
    ROLES,
    Answer,
    Concurrent,
    Converge,
    Cue,
    DrillStep,
    ExpectConfig,
    Fault,
    Render,
    Return,
    Rolegen,
    cast_of,
    resolve,
)

REPO = Path(__file__).resolve().parents[1]
BUNDLED = cast_of(load_workspace(REPO / "environments").specs)
SCENARIOS = {name: resolve(s, BUNDLED) for name, s in WRITTEN.items()}  # as a drill on the bundled lab runs them
NEW = ("operator-partition", "flaky-api", "returning-site", "paused-patroni", "recreated-pod", "apply-race")


def _runs(name: str) -> list[Rolegen]:
    return [s for s in SCENARIOS[name].steps if isinstance(s, Rolegen)]


def _all_steps(steps: tuple[DrillStep, ...]) -> list[object]:
    """Steps, and the actions of the cues of each rolegen run (recursively)."""
    found: list[object] = []
    for step in steps:
        found.append(step)
        if isinstance(step, Rolegen):
            found += _all_steps(tuple(c.action for c in step.during))  # type: ignore[arg-type]
    return found


def _faults(name: str) -> list[Fault]:
    return [s for s in _all_steps(SCENARIOS[name].steps) if isinstance(s, Fault)]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_fault_is_a_valid_lab_operation(name: str) -> None:
    for step in _faults(name):
        assert step.op in OPS
        request_message(step.op, **step.args)  # raises on a missing or unknown argument


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_returns_to_the_baseline(name: str) -> None:
    steps = SCENARIOS[name].steps
    assert SCENARIOS[name].expect.final_leader == "gold"
    last = [s for s in steps if isinstance(s, Converge | Return)][-1]
    assert getattr(last, "leader", getattr(last, "to", None)) == "gold"


def test_loss_is_allowed_only_inside_a_site_loss_window() -> None:
    # Updated for the new scenarios: flaky-api and returning-site lose gold too; the window still opens at that
    # loss and closes at the failover that promotes golddr.
    windows = {n: s.expect.loss_window for n, s in SCENARIOS.items() if s.expect.loss_window}
    assert windows == {n: ("fault", "promoted") for n in ("site-loss-failover", "flaky-api", "returning-site")}
    assert all(s.expect.zero_loss for s in SCENARIOS.values())
    for name in windows:
        steps = SCENARIOS[name].steps
        marks = {step.mark: step for step in steps if isinstance(step, Fault | Rolegen) and step.mark}
        assert isinstance(marks["fault"], Fault) and marks["fault"].op == "lose"
        assert isinstance(marks["promoted"], Rolegen) and marks["promoted"].verb == "failover"
        assert steps.index(marks["fault"]) < steps.index(marks["promoted"])


def test_faults_that_must_stop_a_role_change_expect_an_error() -> None:
    def runs(name: str) -> list[Rolegen]:
        return [s for s in SCENARIOS[name].steps if isinstance(s, Rolegen)]

    assert runs("tunnel-cut")[0].expect == "error"
    assert runs("hung-patroni")[0].verb == "failover" and runs("hung-patroni")[0].expect == "error"
    assert runs("killed-rolegen")[0].kill_after == (0.7, 1.5, 2.5)
    concurrent = [s for s in SCENARIOS["concurrent-rolegen"].steps if isinstance(s, Concurrent)]
    assert len(concurrent) == 1 and len(concurrent[0].runs) == 2


def test_rolegen_arguments_are_what_a_user_types() -> None:
    assert Rolegen("failover", "golddr", timeout=15).argv(60) == ["failover", "--to", "golddr", "--yes",
                                                                  "--timeout", "15"]
    assert Rolegen("switchover", "gold").argv(60)[-1] == "60"


def test_unknown_scenario_is_a_usage_error_listing_the_known_ones() -> None:
    with pytest.raises(UsageError) as err:
        scenario("meteor-strike")
    assert err.value.hint and "crash-restart-failover" in err.value.hint


def test_the_new_scenarios_are_registered() -> None:
    assert set(NEW) <= set(SCENARIOS)


def test_operator_partition_only_faults_the_operators_route_and_must_refuse() -> None:
    ops = [f.op for f in _faults("operator-partition")]
    assert ops == ["api_cut", "api_slow", "api_heal"]  # gold itself, the tunnel, golddr: untouched
    assert [(r.verb, r.to, r.expect) for r in _runs("operator-partition")] == [("failover", "golddr", "error")] * 2
    steps = SCENARIOS["operator-partition"].steps
    assert isinstance(steps[-2], Converge) and steps[-2].leader == "gold"  # nothing promoted: gold still leads


def test_flaky_api_covers_failover_catch_up_failback_rewind_and_reseed_from_inside_each_run() -> None:
    covered = {}
    for run in _runs("flaky-api"):
        cues = [c for c in run.during if isinstance(c.action, Fault) and c.action.op == "api_flaky"]
        if cues:
            covered[run.verb] = (run.expect, sorted(c.action.args["site"] for c in cues),  # type: ignore[union-attr]
                                 {c.on_output for c in cues})
    assert covered == {"failover": ("safe", ["golddr"], {"Preflight"}),  # gold is lost: only golddr's API counts
                       "failback": ("safe", ["gold", "golddr"], {"Rewind"}),
                       "reseed": ("safe", ["gold", "golddr"], {"Preflight"})}
    runs = (("failover", ["--to", "golddr"]), ("failback", ["--to", "gold"]), ("reseed", ["--env", "golddr"]))
    for verb, args in runs:
        dry = CliRunner().invoke(app, [verb, *args, "--dry-run", "--dir", str(REPO / "environments")])
        assert dry.exit_code == 0, dry.output
        assert all(title in dry.stdout for title in covered[verb][2])  # each cue names a real runbook step
    ops = [s.op for s in SCENARIOS["flaky-api"].steps if isinstance(s, Fault)]
    assert ops.count("api_heal") == 3  # healed after each flaky run, before the next step relies on the API


def test_returning_site_cold_starts_gold_before_its_tunnel_without_a_fence_first() -> None:
    steps = SCENARIOS["returning-site"].steps
    restores = [s for s in steps if isinstance(s, Fault) and s.op == "restore"]
    assert len(restores) == 1 and restores[0].args == {"site": "gold", "tunnel_after": 12}
    before = steps[:steps.index(restores[0])]
    # No `restore --api-only` + failover first (that would fence gold before its members start: another drill).
    assert [r.verb for r in before if isinstance(r, Rolegen)] == ["failover"]


def test_paused_patroni_switchover_refuses_and_maintenance_ends_before_the_check() -> None:
    faults = _faults("paused-patroni")
    assert [(f.op, f.args.get("on", True)) for f in faults] == [("maintenance", True), ("maintenance", False)]
    assert [(r.verb, r.expect) for r in _runs("paused-patroni")] == [("switchover", "error")]
    # "before any write": right after the refusal, while still paused, both DCS configs are as they were
    steps = SCENARIOS["paused-patroni"].steps
    checks = [s for s in steps if isinstance(s, ExpectConfig)]
    assert [(c.site, c.holds) for c in checks] == [
        ("gold", {"standby_cluster": None}), ("golddr", {"standby_cluster": {"primary_slot_name": "golddr"}})]
    assert steps.index(checks[-1]) < steps.index(faults[1])


def test_recreated_pod_runs_over_a_slow_link_and_turns_it_off_before_returning() -> None:
    wan = [f for f in _faults("recreated-pod") if f.op == "wan"]
    assert [f.args for f in wan] == [{"latency_ms": 300}, {}]  # off again (all zero) before the failback
    steps = SCENARIOS["recreated-pod"].steps
    # the new settings drop the tunnel's connections: the switchover starts only once golddr streams again
    assert steps[steps.index(wan[0]) + 1] == Converge("gold")


def test_recreated_pod_cues_name_real_switchover_steps() -> None:
    runs = [r for r in _runs("recreated-pod") if r.during]
    assert [(r.verb, r.to) for r in runs] == [("switchover", "golddr"), ("switchover", "gold")]
    for run in runs:
        [cue] = run.during
        old = "gold" if run.to == "golddr" else "golddr"
        assert cue.action == Fault("delete_pod", {"site": old, "member": "leader"})  # the site being demoted
        dry = CliRunner().invoke(app, ["switchover", "--to", run.to, "--dry-run", "--dir", str(REPO / "environments")])
        assert dry.exit_code == 0, dry.output
        assert cue.on_output and cue.on_output in dry.stdout  # a title the run logs as "[n/N] ..." when it starts


def test_apply_race_answers_the_prompt_only_after_the_peer_was_promoted() -> None:
    steps = SCENARIOS["apply-race"].steps
    [prompted] = [r for r in _runs("apply-race") if not r.yes]
    assert prompted.argv(60) == ["apply", "--env", "golddr", "--timeout", "60"]  # no --yes: it asks
    actions = [c.action for c in prompted.during]
    assert isinstance(actions[0], Rolegen) and (actions[0].verb, actions[0].to) == ("failover", "gold")
    assert actions[0].workspace == "colleague"  # their records must not rewrite the specs the apply planned from
    assert actions[1] == Answer("y")
    source = (REPO / "generator/rolegen/commands/apply.py").read_text()
    assert all(c.on_output and f'"{c.on_output}' in source.replace("f\"", "\"") for c in prompted.during)
    checks = [s for s in steps if isinstance(s, ExpectConfig)]
    assert checks and checks[0].holds["failsafe_mode"] is True
    renders = [s for s in steps if isinstance(s, Render)]
    assert renders[0].edit  # the first apply runs Helm (its values change)
    # taking the colleague's roles: golddr first (render refuses a second declared leader)
    after = renders[renders.index(Render("golddr", "leader")) + 1:]
    assert [(r.env, r.role) for r in after[:2]] == [("golddr", "standby-leader"), ("gold", "leader")]
    # ... and the edit is undone (the spec's own value) and applied at the end, so a second run runs Helm again
    spec = (REPO / "environments" / "gold.yaml").read_text()
    assert renders[-1].edit == {"tsc": {"monitor": {"interval": 10}}} and "monitor: {interval: 10," in spec
    assert steps[steps.index(renders[-1]) + 1] == Rolegen("apply", "gold")


def test_apply_and_reseed_take_env_and_cues_default_to_none() -> None:
    assert Rolegen("reseed", "golddr").argv(30) == ["reseed", "--env", "golddr", "--yes", "--timeout", "30"]
    assert Cue(Answer("y"), on_output="?").after is None


# -- roles, resolved when a drill runs ---------------------------------------------------------------------------
def _sites_named(value: Any) -> list[str]:
    """Every value of a site field (a step's site, a run's target, a fault's `site`, the final leader) in a
    scenario, its cues' actions included."""
    if isinstance(value, Fault):
        return [value.args["site"]] if value.args.get("site") is not None else []
    found: list[str] = []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.name in ("to", "site", "leader", "env", "final_leader"):
                found.append(item)
            else:
                found += _sites_named(item)
    elif isinstance(value, tuple | list):
        for item in value:
            found += _sites_named(item)
    return found


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_scenarios_name_sites_by_role_only(name: str) -> None:
    written = WRITTEN[name]
    assert set(_sites_named(written)) <= set(ROLES)
    assert not re.search(r"\bgold(dr)?\b", repr(written))  # no site name anywhere, not even in the summary

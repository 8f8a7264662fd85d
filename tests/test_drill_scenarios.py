"""Scenario definitions: each one is runnable data whose expectations encode the fault model's promise."""

from __future__ import annotations

import pytest

from rolegen.drill.scenarios import SCENARIOS, Concurrent, Converge, Fault, Return, Rolegen, scenario
from rolegen.errors import UsageError
from rolegen.lab.control import OPS, request_message


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_fault_is_a_valid_lab_operation(name: str) -> None:
    for step in SCENARIOS[name].steps:
        if isinstance(step, Fault):
            assert step.op in OPS
            request_message(step.op, **step.args)  # raises on a missing or unknown argument


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_returns_to_the_baseline(name: str) -> None:
    steps = SCENARIOS[name].steps
    assert SCENARIOS[name].expect.final_leader == "gold"
    last = [s for s in steps if isinstance(s, Converge | Return)][-1]
    assert getattr(last, "leader", getattr(last, "to", None)) == "gold"


def test_loss_is_allowed_only_inside_a_site_loss_window() -> None:
    windows = {n: s.expect.loss_window for n, s in SCENARIOS.items() if s.expect.loss_window}
    assert windows == {"site-loss-failover": ("fault", "promoted")}
    assert all(s.expect.zero_loss for s in SCENARIOS.values())
    marks = {step.mark for step in SCENARIOS["site-loss-failover"].steps if isinstance(step, Fault | Rolegen)}
    assert {"fault", "promoted"} <= marks


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

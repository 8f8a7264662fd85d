"""The partition matrix as drill scenarios (rolegen_lab.drills.witness_scenarios): each runs only on a lab with
automatic failover, names sites by role, and says whether the guards must fail over (then a loss window from
the fault to the promotion they make) or must not (then no loss at all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rolegen.errors import RolegenError
from rolegen_lab.drills.catalog import scenario
from rolegen_lab.drills.report import Report
from rolegen_lab.drills.runner import Drill
from rolegen_lab.drills.scenarios import SCENARIOS
from rolegen_lab.drills.steps import EITHER, Cast, Converge, Fault, Return, Rolegen, Scenario, Write, resolve
from rolegen_lab.drills.witness_scenarios import AUTOMATIC


class InfoLab:
    def __init__(self, automatic: bool) -> None:
        self.automatic = automatic

    def request(self, op: str, **_: Any) -> Any:
        assert op == "info"
        return {"sites": {}, "automatic": self.automatic,
                "environments": str(Path(__file__).resolve().parents[1] / "environments"), "kubeconfig": "/x"}


def test_the_matrix_shapes_are_automatic_scenarios_apart_from_the_suites_manual_ones() -> None:
    assert set(AUTOMATIC) >= {"auto-leader-isolated", "auto-site-loss", "auto-witness-down", "auto-tunnel-cut",
                              "auto-leader-witness-link", "auto-standby-isolated", "auto-asymmetric",
                              "auto-crash-restart", "auto-tunnel-flapping", "auto-guard-killed", "auto-clock-skew"}
    assert all(s.automatic for s in AUTOMATIC.values()) and not any(s.automatic for s in SCENARIOS.values())
    assert not set(AUTOMATIC) & set(SCENARIOS)
    assert scenario("auto-tunnel-cut") is AUTOMATIC["auto-tunnel-cut"]  # `rolegen lab drill` finds them


@pytest.mark.parametrize("name", sorted(AUTOMATIC))
def test_a_shape_either_fails_over_on_its_own_within_a_loss_window_or_loses_nothing(name: str) -> None:
    shape = resolve(AUTOMATIC[name], Cast("gold", "golddr"))
    assert not any(isinstance(step, Rolegen) for step in shape.steps)  # the guards decide, nobody runs failover
    promoted = [s for s in shape.steps if isinstance(s, Converge) and s.mark == "promoted"]
    if any(isinstance(s, Converge) and s.leader == EITHER for s in shape.steps):
        # the model lets it end either way (the leader's guard killed while the tunnel is cut: a failover inside
        # the site, or across it once nothing renewed the Lease for promote_after): loss only inside its window
        assert shape.expect.loss_window == ("fault", "healed") and shape.expect.no_promotion_on is None
        assert any(isinstance(s, Return) for s in shape.steps)  # back to the baseline either way
    elif promoted:
        assert promoted[0].leader == "golddr" and shape.expect.loss_window == ("fault", "promoted")
        assert shape.expect.within == ("fault", "promoted", 23)  # fence_after (8 s on the lab) + 15 s
    else:
        assert shape.expect.zero_loss and shape.expect.loss_window is None
        assert all(s.leader == "gold" for s in shape.steps if isinstance(s, Converge))  # never a failover
        assert shape.expect.no_promotion_on == "golddr"  # and the verdict checks that golddr never promoted
        # witness loss alone or a tunnel blip: no write outage either; a restart stops writes for a moment
        restarts = any(isinstance(s, Fault) and s.op in ("kill", "kill_guard") for s in shape.steps)
        assert (shape.expect.max_write_gap is None) == restarts


def test_the_flapping_tunnel_blips_each_shorter_than_fence_after() -> None:
    steps = AUTOMATIC["auto-tunnel-flapping"].steps
    cuts = [i for i, s in enumerate(steps) if isinstance(s, Fault) and s.op == "cut"]
    assert len(cuts) == 4
    for i in cuts:
        blip = steps[i + 1]
        assert isinstance(blip, Write) and 4 < blip.seconds < 8  # past wal_receiver_timeout, under fence_after
        assert isinstance(steps[i + 2], Fault) and steps[i + 2].op == "heal"  # type: ignore[union-attr]


def _report(**kw: Any) -> Report:
    report = Report("shape", "summary", acknowledged=10, converged=True, final_leader="gold", **kw)
    return report


@pytest.mark.parametrize(("marks", "gap", "timelines", "reasons"), [
    ({"fault": 2.0, "promoted": 22.0}, 0.0, {}, []),
    ({"fault": 2.0, "promoted": 26.5}, 0.0, {}, ["promoted 24.5s after fault: over its bound of 23s"]),
    ({"fault": 2.0}, 0.0, {}, ["promoted never came after fault (bound 23s)"]),
])
def test_a_failover_over_its_bound_fails_the_verdict(marks: dict[str, float], gap: float,
                                                     timelines: dict[str, Any], reasons: list[str]) -> None:
    report = _report(marks=marks, longest_gap=gap, timelines=timelines)
    report.evaluate(resolve(AUTOMATIC["auto-leader-isolated"], Cast("gold", "golddr")), [])
    assert report.reasons == reasons


def test_a_no_failover_shape_fails_on_a_write_outage_or_a_promotion_of_the_standby() -> None:
    shape = resolve(AUTOMATIC["auto-witness-down"], Cast("gold", "golddr"))
    quiet = _report(longest_gap=0.08, timelines={"gold": []})
    quiet.evaluate(shape, [])
    assert quiet.passed
    broken = _report(longest_gap=3.5, timelines={"golddr": [("patroni-0", 3)]})
    broken.evaluate(shape, [])
    assert broken.reasons == ["a write outage of 3.50s (none may exceed 2s)",
                              "golddr promoted (selected timeline 3 (patroni-0)): a failover that must not be"]


@pytest.mark.parametrize(("automatic", "lab"), [(True, False), (False, True)])
def test_a_drill_refuses_a_lab_of_the_other_kind(automatic: bool, lab: bool) -> None:
    shape = AUTOMATIC["auto-tunnel-cut"] if automatic else SCENARIOS["tunnel-cut"]
    drill = Drill(InfoLab(lab), shape)  # type: ignore[arg-type]
    with pytest.raises(RolegenError) as err:
        drill.run()
    assert "automatic failover" in err.value.message
    assert err.value.hint is not None and ("--automatic" in err.value.hint) == automatic


def test_unknown_scenarios_name_both_kinds() -> None:
    with pytest.raises(RolegenError) as err:
        scenario("nope")
    assert "auto-leader-isolated" in (err.value.hint or "") and "switchover" in (err.value.hint or "")
    assert isinstance(AUTOMATIC["auto-site-loss"], Scenario)

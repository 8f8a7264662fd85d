"""The partition matrix as drill scenarios (rolegen_lab.drills.witness_scenarios): each runs only on a lab with
automatic failover, names sites by role, and says whether the guards must fail over (then a loss window from
the fault to the promotion they make) or must not (then no loss at all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rolegen.errors import RolegenError
from rolegen_lab.drills.catalog import scenario
from rolegen_lab.drills.runner import Drill
from rolegen_lab.drills.scenarios import SCENARIOS, Cast, Converge, Rolegen, Scenario, resolve
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
                              "auto-crash-restart"}
    assert all(s.automatic for s in AUTOMATIC.values()) and not any(s.automatic for s in SCENARIOS.values())
    assert not set(AUTOMATIC) & set(SCENARIOS)
    assert scenario("auto-tunnel-cut") is AUTOMATIC["auto-tunnel-cut"]  # `rolegen lab drill` finds them


@pytest.mark.parametrize("name", sorted(AUTOMATIC))
def test_a_shape_either_fails_over_on_its_own_within_a_loss_window_or_loses_nothing(name: str) -> None:
    shape = resolve(AUTOMATIC[name], Cast("gold", "golddr"))
    assert not any(isinstance(step, Rolegen) for step in shape.steps)  # the guards decide, nobody runs failover
    promoted = [s for s in shape.steps if isinstance(s, Converge) and s.mark == "promoted"]
    if promoted:
        assert promoted[0].leader == "golddr" and shape.expect.loss_window == ("fault", "promoted")
    else:
        assert shape.expect.zero_loss and shape.expect.loss_window is None
        assert all(s.leader == "gold" for s in shape.steps if isinstance(s, Converge))  # never a failover


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

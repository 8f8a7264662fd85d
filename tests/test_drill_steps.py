"""How a drill scenario's roles become the lab's sites (rolegen_lab.drills.steps): the cast from the specs, and
resolution of the suite's scenarios from either site."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rolegen.errors import RolegenError
from rolegen.offline.workspace import load_workspace
from rolegen_lab.drills.scenarios import SCENARIOS as WRITTEN
from rolegen_lab.drills.steps import LEADER, STANDBY, Converge, ExpectConfig, Rolegen, Scenario, cast_of, resolve

REPO = Path(__file__).resolve().parents[1]
BUNDLED = cast_of(load_workspace(REPO / "environments").specs)
SCENARIOS = {name: resolve(s, BUNDLED) for name, s in WRITTEN.items()}  # as a drill on the bundled lab runs them


def _specs(tmp_path: Path, gold: str = "standby-leader", golddr: str = "leader") -> Path:
    """The bundled environments with these roles declared (by default golddr leads, as after a switchover)."""
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    for name, role in (("gold", gold), ("golddr", golddr)):
        data = yaml.safe_load((REPO / "environments" / f"{name}.yaml").read_text())
        (env_dir / f"{name}.yaml").write_text(yaml.safe_dump({**data, "role": role}, sort_keys=False))
    return env_dir


def _swap_names(value: Any) -> Any:
    """`value` (a resolved scenario) with gold and golddr swapped wherever they appear."""
    if isinstance(value, str):
        return re.sub(r"\bgold(dr)?\b", lambda m: "gold" if m.group(1) else "golddr", value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _swap_names(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, tuple):
        return tuple(_swap_names(item) for item in value)
    if isinstance(value, dict):
        return {key: _swap_names(item) for key, item in value.items()}
    return value


def test_resolution_against_specs_whose_leader_is_golddr_maps_leader_to_golddr(tmp_path: Path) -> None:
    sites = cast_of(load_workspace(_specs(tmp_path)).specs)
    assert (sites.leader, sites.standby) == ("golddr", "gold")
    assert (sites.site(LEADER), sites.site(STANDBY)) == ("golddr", "gold")
    switchover = resolve(WRITTEN["switchover"], sites)
    assert [(r.verb, r.to) for r in switchover.steps if isinstance(r, Rolegen)] == [("switchover", "gold"),
                                                                                   ("switchover", "golddr")]
    assert switchover.expect.final_leader == "golddr"
    paused = resolve(WRITTEN["paused-patroni"], sites)
    assert [(c.site, c.holds) for c in paused.steps if isinstance(c, ExpectConfig)] == [
        ("golddr", {"standby_cluster": None}), ("gold", {"standby_cluster": {"primary_slot_name": "gold"}})]
    # Every scenario from golddr is the bundled one's mirror image: the same steps, each site swapped for its peer
    # (summaries and the cues' runbook lines too, e.g. "Demote gold" for the switchover back).
    for name, written in WRITTEN.items():
        assert resolve(written, sites) == _swap_names(SCENARIOS[name]), name


def test_an_explicit_leader_casts_that_site_whatever_the_specs_declare(tmp_path: Path) -> None:
    specs = load_workspace(_specs(tmp_path)).specs
    assert cast_of(specs, "gold") == BUNDLED  # restoring the baseline: gold leads again, whatever was recorded


def test_a_drill_needs_exactly_one_declared_leader_or_an_explicit_one(tmp_path: Path) -> None:
    specs = load_workspace(_specs(tmp_path, gold="standby-leader", golddr="standby-leader")).specs  # mid-apply-race
    with pytest.raises(RolegenError, match="declare gold standby-leader, golddr standby-leader"):
        cast_of(specs)
    assert cast_of(specs, "golddr").standby == "gold"
    with pytest.raises(RolegenError, match="one of them meteor"):
        cast_of(specs, "meteor")


def test_resolving_refuses_a_scenario_that_names_a_site() -> None:
    with pytest.raises(ValueError, match="by role"):
        resolve(Scenario("s", "test", (Converge("gold"),)), BUNDLED)

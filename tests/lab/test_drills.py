"""Every drill scenario on one shared lab, each PASS criterion of its report asserted on its own: acknowledged
writes kept where the fault model promises it, no timeline number selected on both sites, never two writable
primaries, convergence back to the baseline, and every rolegen run ending as the scenario requires.

The baseline (gold leads, golddr streams) is restored between scenarios; a lab a scenario left unrecoverable is
rebuilt, so one failure does not cascade into the next scenario's verdict."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rolegen.commands.lab import leftover_pids
from rolegen.drill.report import Report, duplicate_timelines
from rolegen.drill.runner import Drill, restore_baseline
from rolegen.drill.scenarios import SCENARIOS
from rolegen.lab.control import LocalControl
from rolegen.lab.lab import Lab
from rolegen.lab.runtime import member_runtime

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 40  # rolegen --timeout and each convergence wait: short phases keep the module within minutes


class DrillLab:
    """One lab for the module; `report(name)` runs a scenario once (from the baseline) and caches its report."""

    def __init__(self, root: Path) -> None:
        self.root, self.runtime = root, member_runtime()
        self.lab = self._up()
        self.reports: dict[str, Report] = {}

    def _up(self) -> Lab:
        lab = Lab(self.root, REPO / "environments", self.runtime)
        lab.up(timeout=120)
        return lab

    def rebuild(self) -> None:
        self.lab.down()
        shutil.rmtree(self.root / "gold", ignore_errors=True)
        shutil.rmtree(self.root / "golddr", ignore_errors=True)
        self.lab = self._up()

    def report(self, name: str) -> Report:
        if name not in self.reports:
            if not restore_baseline(LocalControl(self.lab), timeout=TIMEOUT).passed:
                self.rebuild()
            self.reports[name] = Drill(LocalControl(self.lab), SCENARIOS[name], timeout=TIMEOUT).run()
        return self.reports[name]


@pytest.fixture(scope="module")
def drills() -> Iterator[DrillLab]:
    root = member_runtime().workdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECACHEDIR", str(root / "kube-cache"))  # rolegen runs keep kubectl's cache in the lab
        holder: DrillLab | None = None
        try:
            holder = DrillLab(root)
            yield holder
        finally:
            if holder is not None:
                holder.lab.down()
            left = leftover_pids(root)
            shutil.rmtree(root, ignore_errors=True)
    assert left == [], f"lab processes left behind: {left}"


def _details(report: Report) -> str:
    return "\n".join(report.lines())


def no_acknowledged_write_lost(report: Report) -> None:
    assert report.acknowledged > 0, "the workload never wrote"
    if SCENARIOS[report.scenario].expect.zero_loss:
        assert report.lost == [], f"{len(report.lost)} acknowledged writes lost\n{_details(report)}"


def no_timeline_selected_on_both_sites(report: Report) -> None:
    assert duplicate_timelines(report.timelines) == [], _details(report)


def never_two_writable_primaries(report: Report) -> None:
    assert report.probes > 0
    assert report.dual_primaries == [], _details(report)


def converges_back_to_the_baseline(report: Report) -> None:
    assert report.converged, _details(report)
    assert report.final_leader == "gold"
    assert report.final_roles == {"gold": {"live": "leader", "declared": "leader"},
                                  "golddr": {"live": "standby-leader", "declared": "standby-leader"}}


def every_run_ends_as_required(report: Report) -> None:
    assert report.runs, "no rolegen run was made"
    assert report.reasons == [], _details(report)  # includes each run's and each concurrent group's problems


CRITERIA: list[Callable[[Report], None]] = [
    no_acknowledged_write_lost,
    no_timeline_selected_on_both_sites,
    never_two_writable_primaries,
    converges_back_to_the_baseline,
    every_run_ends_as_required,
]


@pytest.mark.parametrize("criterion", CRITERIA, ids=[c.__name__ for c in CRITERIA])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_drill(drills: DrillLab, scenario: str, criterion: Callable[[Report], None]) -> None:
    criterion(drills.report(scenario))

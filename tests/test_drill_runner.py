"""The drill runner's bookkeeping that decides which losses a scenario allows."""

from __future__ import annotations

import time
from typing import Any

from rolegen.drill.runner import Drill
from rolegen.drill.scenarios import Fault, Scenario, Write


class SlowLab:
    """A lab whose site loss kills the members at once, then takes a while stopping the control plane."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.killed_at: float | None = None

    def request(self, op: str, **_: Any) -> Any:
        if op == "info":
            return {"sites": {}}
        self.killed_at = time.monotonic()
        time.sleep(self.seconds)
        return "gold"


def test_a_fault_is_marked_when_it_starts_not_when_the_lab_finishes_injecting_it() -> None:
    # A site loss's window must open when its members die: marking the end of the request (the control plane's
    # shutdown) would count the writes acknowledged just before the kill as losses outside the window.
    lab = SlowLab(0.3)
    drill = Drill(lab, Scenario("s", "test", (Write(0),)))  # type: ignore[arg-type]
    drill.step(Fault("lose", {"site": "gold"}, mark="fault"))
    assert lab.killed_at is not None
    assert drill.marks["fault"] <= lab.killed_at
    assert lab.killed_at - drill.marks["fault"] < 0.1
    assert "(from " in drill.report.events[-1][1]

"""`rolegen lab drill SCENARIO`: a game day on the running lab (see rolegen.drill); returns the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rolegen.drill.report import Report
from rolegen.drill.runner import Drill
from rolegen.drill.scenarios import scenario
from rolegen.lab.control import connect


def run(name: str, root: Path, timeout: float, log: Callable[[str], None]) -> Report:
    chosen = scenario(name)  # an unknown name fails before the lab is asked anything
    return Drill(connect(root), chosen, timeout=timeout, log=log).run()

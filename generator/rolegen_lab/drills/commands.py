"""`rolegen lab drill SCENARIO`: a game day on the running lab (see rolegen_lab.drills); returns the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rolegen_lab.control.channel import connect
from rolegen_lab.drills.catalog import scenario
from rolegen_lab.drills.report import Report
from rolegen_lab.drills.runner import Drill


def run(name: str, root: Path, timeout: float, log: Callable[[str], None]) -> Report:
    chosen = scenario(name)  # an unknown name fails before the lab is asked anything
    return Drill(connect(root), chosen, timeout=timeout, log=log).run()

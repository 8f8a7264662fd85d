"""`rolegen lab drill SCENARIO`: a game day on the running lab (see rolegen.drill); returns the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rolegen.commands import lab as lab_cmd
from rolegen.drill.report import Report
from rolegen.drill.runner import Drill
from rolegen.drill.scenarios import scenario


def run(name: str, root: Path, timeout: float, log: Callable[[str], None]) -> Report:
    chosen = scenario(name)  # an unknown name fails before the lab is asked anything
    return Drill(lab_cmd.client(root), chosen, timeout=timeout, log=log).run()

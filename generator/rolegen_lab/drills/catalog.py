"""Every drill scenario `rolegen lab drill` knows: the suite's (rolegen_lab.drills.scenarios) and the partition
matrix of automatic failover (rolegen_lab.drills.witness_scenarios), and its shapes with replication sync
(rolegen_lab.drills.sync_scenarios)."""

from __future__ import annotations

from rolegen.errors import UsageError
from rolegen_lab.drills.scenarios import SCENARIOS
from rolegen_lab.drills.steps import Scenario
from rolegen_lab.drills.sync_scenarios import SYNC
from rolegen_lab.drills.witness_scenarios import AUTOMATIC

ALL: dict[str, Scenario] = {**SCENARIOS, **AUTOMATIC, **SYNC}


def scenario(name: str) -> Scenario:
    if name not in ALL:
        raise UsageError(f"unknown drill scenario {name!r}", hint=f"scenarios: {', '.join(ALL)}")
    return ALL[name]

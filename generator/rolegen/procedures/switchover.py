"""Planned switchover: the preflight, then the handover (rolegen.procedures.handover): demote first, wait for the
LSN gate, then promote. Never the other way round.

Resumable: the phase is read from the live DCS configs, so a run killed at any step continues safely.
"""

from __future__ import annotations

from collections.abc import Callable

from rolegen.cluster.health import MAX_LAG_BYTES
from rolegen.procedures import handover
from rolegen.procedures.base import Pair
from rolegen.procedures.handover import Handover
from rolegen.procedures.handover import SwitchoverResult as SwitchoverResult
from rolegen.procedures.steps import Step, execute, runbook


def steps(pair: Pair) -> list[Step[Handover]]:
    to, old = pair.to.environment, pair.other.environment
    return [
        Step(
            "Preflight",
            f"{old} reports leader; {to} reports standby-leader, streaming; both sites show the same system id\n"
            f"(`initialize`); generated files are up to date and the live DCS roles match the specs (no pending\n"
            f"apply). After the prompt: {old}'s leader lock renewed while watched (proof it is alive to hand over\n"
            f"its last writes), and {to}'s replay lag <= {MAX_LAG_BYTES >> 20} MiB in fresh reports of both sites.\n"
            f"A run that finds {old} demoted resumes.",
            handover.check,
        ),
        *handover.steps(pair),
    ]


def run(pair: Pair, *, confirm: Callable[[str], None], timeout: float = 60) -> SwitchoverResult:
    started = handover.begin(pair, confirm, timeout)
    if started is None:
        return SwitchoverResult(pair.to.environment, pair.other.environment)
    execute(steps(pair), started, pair.log)
    started.result.timings = dict(pair.timings)
    return started.result


def dry_run(pair: Pair) -> str:
    return runbook(f"Switchover to {pair.to.environment} (planned, zero acknowledged writes lost)", steps(pair))

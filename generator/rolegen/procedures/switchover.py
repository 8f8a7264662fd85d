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
            f"{old} reports leader; {to} reports standby-leader, streaming, replay lag <= {MAX_LAG_BYTES >> 20} MiB;\n"
            f"both sites show the same system id (`initialize`); generated files are up to date and the live\n"
            f"DCS roles match the specs (no pending apply). After the prompt: {old}'s leader lock renewed while\n"
            f"watched (proof it is alive to hand over its last writes). A run that finds {old} demoted resumes.",
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

"""`rolegen lab chaos`: seeded random schedules (or one replay file) on the running lab, each judged by the chaos
checker; a failing schedule is saved as a replay file. See rolegen_lab.drills.chaos."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rolegen.errors import UsageError
from rolegen_lab.control.channel import OPS, Control, connect
from rolegen_lab.drills.chaos import schedule as sched
from rolegen_lab.drills.chaos.result import ChaosSeries
from rolegen_lab.drills.chaos.runner import ChaosRun
from rolegen_lab.drills.observe import Endpoints
from rolegen_lab.drills.runner import restore_baseline

LAB_TTL = 20.0  # the lab's Patroni ttl (rolegen_lab.lab.LAB_TIMINGS): delays are drawn up to beyond it


@dataclass(frozen=True)
class ChaosOptions:
    schedules: int = 1
    seed: int | None = None  # None: one from the clock, printed with each result
    minutes: float = 1.0
    replay: Path | None = None
    out: Path = Path()
    timeout: float = 30


def check(options: ChaosOptions) -> None:
    """A bad replay file or option is a usage error (raised before the lab is asked anything)."""
    if options.replay is not None:
        sched.load(options.replay)
    elif options.schedules < 1 or options.minutes <= 0:
        raise UsageError("--schedules must be at least 1 and --minutes more than 0")


def schedules(options: ChaosOptions, lab: Endpoints) -> list[sched.Schedule]:
    """What to run: the replay file's schedule, or N seeded ones (seed, seed+1, ...) drawn on `lab`'s sites and
    returning to its baseline (the site it came up leading)."""
    if options.replay is not None:
        return [sched.load(options.replay)]
    check(options)
    first = options.seed if options.seed is not None else int(time.time())
    return [sched.generate(first + n, seconds=options.minutes * 60, sites=tuple(lab.sites), ttl=LAB_TTL,
                           lab_ops=set(OPS), baseline=lab.baseline)
            for n in range(options.schedules)]


def run_series(control: Control, chosen: list[sched.Schedule], options: ChaosOptions,
               log: Callable[[str], None], rebuild: Callable[[], Control] | None = None) -> ChaosSeries:
    """`rebuild`: a fresh lab when the baseline cannot be restored (a benchmark's own lab); without it the series
    stops there (the lab the user brought up is left for them to look at)."""
    series = ChaosSeries()
    for number, schedule in enumerate(chosen, 1):
        if number > 1 and not restore_baseline(control, schedule.baseline, timeout=options.timeout * 2).passed:
            if rebuild is None:
                log(f"the baseline could not be restored before schedule {number}: the series stops here")
                break
            log(f"the baseline could not be restored before schedule {number}: a fresh lab")
            control = rebuild()
        log(f"schedule {number}/{len(chosen)}, seed {schedule.seed}: {len(schedule.ops)} operations")
        result = ChaosRun(control, schedule, timeout=options.timeout, log=log).run()
        if not result.passed:
            name = f"chaos-seed-{schedule.seed}.yaml" if schedule.seed is not None else "chaos-replay-failed.yaml"
            result.replay_file = sched.save(schedule, options.out / name)
        series.results.append(result)
        reasons = "; ".join(f"{v.invariant}: {v.detail}" for v in result.verdict.violations)
        log(f"seed {schedule.seed}: {'PASS' if result.passed else 'FAIL'} in {result.duration:.0f}s {reasons}".rstrip())
    return series


def run(root: Path, options: ChaosOptions, log: Callable[[str], None]) -> ChaosSeries:
    check(options)  # a bad replay file fails before the lab is asked anything
    control = connect(root)
    return run_series(control, schedules(options, Endpoints(control.request("info"))), options, log)

"""A chaos schedule's result (its schedule, the checker's verdict, what happened) and a series' summary, each with
`lines()` for people and `as_dict()` for `-f json|yaml`. Pure."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolegen_lab.drills.chaos.checker import INVARIANTS, Observations, Verdict
from rolegen_lab.drills.chaos.schedule import Schedule


@dataclass
class ChaosResult:
    schedule: Schedule
    verdict: Verdict
    observations: Observations
    events: list[tuple[float, str]] = field(default_factory=list)
    recovery: float | None = None  # seconds from the heal until recovered (None: not recovered)
    duration: float = 0.0
    replay_file: Path | None = None  # where a failing schedule was saved

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def as_dict(self) -> dict[str, Any]:
        obs, v = self.observations, self.verdict
        return {
            "seed": self.schedule.seed, "verdict": "PASS" if self.passed else "FAIL",
            "violations": [x.as_dict() for x in v.violations],
            "acknowledged": len(obs.acknowledged), "lost": len(v.lost), "excused": len(v.excused),
            "accepted_loss": len(v.accepted),
            "timelines_selected": {s: [{"member": m, "timeline": t} for m, t in picks]
                                   for s, picks in sorted(obs.timelines.items())},
            "pvc_deletions": [vars(d) for d in obs.pvc_deletions],
            "recovery_s": None if self.recovery is None else round(self.recovery, 1),
            "final": vars(obs.final), "duration_s": round(self.duration, 1),
            "replay_file": str(self.replay_file) if self.replay_file else None,
            "schedule": self.schedule.as_dict(),
            "runs": [r.as_dict() for r in obs.runs],
            "events": [{"at_s": round(t, 2), "event": e} for t, e in self.events],
        }

    def lines(self) -> list[str]:
        obs, v = self.observations, self.verdict
        out = [*self.schedule.lines(), ""]
        out += [f"{t:7.2f}s  {e}" for t, e in self.events]
        recovery = f"{self.recovery:.1f} s after the heal" if self.recovery is not None else "NOT recovered"
        out += ["", f"acknowledged writes  {len(obs.acknowledged)}; lost {len(v.lost)}; excused by a site loss "
                f"{len(v.excused)}; accepted with --accept-data-loss {len(v.accepted)}",
                f"PVCs deleted         {len(obs.pvc_deletions)}", f"recovered            {recovery}",
                f"{'PASS' if self.passed else 'FAIL'} seed {self.schedule.seed} ({self.duration:.0f} s)"]
        out += [f"  - {x.invariant}: {x.detail}" for x in v.violations]
        if self.replay_file:
            out.append(f"  replay: rolegen lab chaos --replay {self.replay_file}")
        return out


@dataclass
class ChaosSeries:
    """Several schedules in a row: what `rolegen lab chaos --schedules N` prints and bench/chaos.py tabulates."""

    results: list[ChaosResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def by_invariant(self) -> dict[str, int]:
        counts = Counter(x.invariant for r in self.results for x in r.verdict.violations)
        return {name: counts.get(name, 0) for name in INVARIANTS}

    def summary(self) -> dict[str, Any]:
        recoveries = [r.recovery for r in self.results if r.recovery is not None]
        slowest = max(self.results, key=lambda r: r.duration, default=None)
        return {
            "schedules": len(self.results), "failed": sum(not r.passed for r in self.results),
            "violations": self.by_invariant(),
            "acknowledged": sum(len(r.observations.acknowledged) for r in self.results),
            "lost": sum(len(r.verdict.lost) for r in self.results),
            "excused": sum(len(r.verdict.excused) for r in self.results),
            "accepted_loss": sum(len(r.verdict.accepted) for r in self.results),
            "median_recovery_s": round(statistics.median(recoveries), 1) if recoveries else None,
            "slowest_seed": None if slowest is None else slowest.schedule.seed,
            "slowest_s": None if slowest is None else round(slowest.duration, 1),
            "failing_seeds": [r.schedule.seed for r in self.results if not r.passed],
        }

    def table(self) -> list[str]:
        s = self.summary()
        violations = ", ".join(f"{k} {n}" for k, n in s["violations"].items() if n) or "none"
        return ["| schedules | failed | violations by invariant | acknowledged writes | lost | excused (site loss) "
                "| accepted loss | median recovery (s) | slowest seed (s) | failing seeds |",
                "|---|---|---|---|---|---|---|---|---|---|",
                f"| {s['schedules']} | {s['failed']} | {violations} | {s['acknowledged']} | {s['lost']} | "
                f"{s['excused']} | {s['accepted_loss']} | {s['median_recovery_s']} | {s['slowest_seed']} "
                f"({s['slowest_s']}) | {', '.join(map(str, s['failing_seeds'])) or '-'} |"]

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "results": [r.as_dict() for r in self.results]}

    def lines(self) -> list[str]:
        out: list[str] = []
        for result in self.results:
            if result.passed:
                out.append(f"PASS seed {result.schedule.seed}: {len(result.schedule.ops)} operations, "
                           f"{len(result.observations.acknowledged)} writes acknowledged, recovered in "
                           f"{result.recovery if result.recovery is None else round(result.recovery, 1)} s")
            else:
                out += [*result.lines(), ""]
        return [*out, "", *self.table()]

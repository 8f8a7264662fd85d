"""A drill's report: what was observed, the PASS/FAIL verdict computed from the scenario's expectations, and
its two renderings (`lines()` for people, `as_dict()` for `-f json|yaml`). Pure: no lab, no IO.

Timelines come from the PostgreSQL log lines "selected new timeline ID: N" in each member's log (the lab's member
log, which also holds the postmaster's output and survives a wiped data directory). That line is written only by
the server that ends recovery and *chooses* N, once per promotion. The `pg_wal/*.history` files are no proof of
who chose a timeline: a standby fetches its upstream's history files ("fetching timeline history file for
timeline N from primary server"), a re-seed deletes them, and pg_rewind copies the source's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rolegen_lab.drills.steps import ExpectedEnd, Scenario

TIMELINE_RE = re.compile(r"selected new timeline ID: (\d+)")
LEASE_RE = re.compile(r"held by", re.IGNORECASE)
COMMAND_RE = re.compile(r"\brolegen (switchover|failover|failback) --to ([\w-]+)")


def next_command(run: RunRecord) -> tuple[str, str] | None:
    """(verb, to) of the rolegen command a failed run's hint names; "re-run" alone means the same command."""
    if run.exit_code in (0, None) or run.killed_after is not None:
        return None
    hints = [line for line in run.tail if line.startswith("hint:")]
    for line in hints:
        if found := COMMAND_RE.search(line):
            return found.group(1), found.group(2)
    return (run.verb, run.to) if any("re-run" in line for line in hints) else None


def timelines_selected(log_text: str) -> list[int]:
    """Timeline ids a member's log says it selected, in order."""
    return [int(m.group(1)) for m in TIMELINE_RE.finditer(log_text)]


def duplicate_timelines(selected: dict[str, list[tuple[str, int]]]) -> list[int]:
    """Timeline numbers selected on more than one site (`selected`: site -> [(member, timeline)])."""
    per_site = [{tl for _, tl in picks} for picks in selected.values()]
    counts: dict[int, int] = {}
    for numbers in per_site:
        for tl in numbers:
            counts[tl] = counts.get(tl, 0) + 1
    return sorted(tl for tl, n in counts.items() if n > 1)


def split_losses(acknowledged: list[int], at: list[float], missing: set[int], window: tuple[float, float] | None,
                 by: list[str] | None = None, site: str | None = None) -> tuple[list[int], list[int]]:
    """(lost, lost inside `window`): acknowledged ids missing on the final leader, split by when they were
    acknowledged (`at`, same clock as `window`). Without a window every missing id is lost. With `site`, only
    the ids that site acknowledged (`by`) count as inside: a site loss excuses the lost site's unshipped commits,
    never a commit the surviving site acknowledged."""
    lost: list[int] = []
    inside: list[int] = []
    for index, (ident, when) in enumerate(zip(acknowledged, at, strict=True)):
        if ident in missing:
            excused = window is not None and window[0] <= when <= window[1]
            if excused and site is not None:
                excused = by is not None and by[index] == site
            (inside if excused else lost).append(ident)
    return lost, inside


@dataclass
class RunRecord:
    """One `rolegen` process: its arguments, how it ended, the last lines it printed."""

    verb: str
    to: str
    expect: ExpectedEnd | None  # None: judged by its group (Concurrent)
    started: float  # seconds since the drill started
    seconds: float = 0.0
    exit_code: int | None = None
    killed_after: float | None = None  # SIGKILLed by the drill after this many seconds
    tail: list[str] = field(default_factory=list)

    @property
    def has_hint(self) -> bool:
        return any(line.startswith("hint:") for line in self.tail)

    def problem(self) -> str | None:
        """Why this run breaks its expectation (None: it does not)."""
        if self.killed_after is not None:
            return None
        name = self.command
        ok = self.exit_code == 0
        if self.expect == "ok" and not ok:
            return f"{name} failed (exit {self.exit_code}): {self.last_line}"
        if self.expect == "error" and ok:
            return f"{name} succeeded, but this fault must make it refuse or roll back"
        if self.expect in ("error", "safe") and not ok and not self.has_hint:
            return f"{name} ended with exit {self.exit_code} and no hint naming the next command: {self.last_line}"
        if self.expect == "lease-held" and (ok or not any(LEASE_RE.search(line) for line in self.tail)):
            return f"{name} did not fail naming the lease holder (exit {self.exit_code}): {self.last_line}"
        return None

    @property
    def command(self) -> str:
        return f"rolegen {self.verb} {'--env' if self.verb in ('apply', 'reseed') else '--to'} {self.to}"

    @property
    def last_line(self) -> str:
        return self.tail[-1] if self.tail else "(no output)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "verb": self.verb, "to": self.to, "expect": self.expect, "started_s": round(self.started, 2),
            "seconds": round(self.seconds, 2), "exit_code": self.exit_code, "killed_after_s": self.killed_after,
            "tail": self.tail,
        }


def concurrent_problem(runs: list[RunRecord]) -> str | None:
    """Runs started together: exactly one completes, every other fails naming the lease holder."""
    winners = [r for r in runs if r.exit_code == 0]
    if len(winners) != 1:
        return f"{len(winners)} of {len(runs)} concurrent rolegen runs succeeded; exactly one must"
    for run in runs:
        if run is not winners[0] and not any(LEASE_RE.search(line) for line in run.tail):
            return f"the losing concurrent run did not name the lease holder: {run.last_line}"
    return None


@dataclass
class Report:
    scenario: str
    summary: str
    acknowledged: int = 0
    lost: list[int] = field(default_factory=list)  # acknowledged, missing on the final leader, outside the window
    lost_in_window: list[int] = field(default_factory=list)
    lost_at: list[float] = field(default_factory=list)  # when the first lost ids were acknowledged, seconds since start
    loss_window: tuple[float, float] | None = None  # seconds since start
    unknown: int = 0  # in flight when a connection broke: neither acknowledged nor lost
    longest_gap: float = 0.0
    timelines: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    dual_primaries: list[tuple[float, list[str]]] = field(default_factory=list)  # (seconds, members)
    probes: int = 0
    final_roles: dict[str, dict[str, str | None]] = field(default_factory=dict)  # site -> live/declared
    final_leader: str | None = None
    converged: bool = False
    convergence: float | None = None  # seconds from the final heal until converged
    runs: list[RunRecord] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    duration: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)  # the scenario's named moments, seconds since start
    problems: list[str] = field(default_factory=list)  # found while running (steps that did not complete)
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def evaluate(self, scenario: Scenario, groups: list[list[RunRecord]]) -> None:
        """Fill `reasons` (empty: PASS) from the observations and the scenario's expectations (`scenario` as the
        drill ran it: resolved, so its final leader is a site of the lab)."""
        expect, reasons = scenario.expect, list(self.problems)
        if self.acknowledged == 0:
            reasons.append("the workload had no acknowledged write: nothing was measured")
        if self.lost and expect.zero_loss:
            reasons.append(f"{len(self.lost)} acknowledged write(s) lost (first ids: {self.lost[:5]})")
        dups = duplicate_timelines(self.timelines)
        if dups:
            reasons.append(f"timeline number(s) {dups} selected on both sites")
        if self.dual_primaries:
            at, members = self.dual_primaries[0]
            reasons.append(f"two writable primaries observed {len(self.dual_primaries)} time(s), first at "
                           f"{at:.1f}s: {', '.join(members)}")
        if not self.converged:
            reasons.append(f"not converged: {expect.final_leader} leading with its peer streaming from it")
        elif self.final_leader != expect.final_leader:
            reasons.append(f"final leader {self.final_leader}, expected {expect.final_leader}")
        reasons += self._bounds(scenario)
        reasons += [p for r in self.runs if r.expect is not None and (p := r.problem())]
        reasons += [p for g in groups if (p := concurrent_problem(g))]
        self.reasons = reasons

    def _bounds(self, scenario: Scenario) -> list[str]:
        """The automatic-failover shapes' bounds: a failover in time, no write outage, no promotion."""
        expect, out = scenario.expect, []
        if expect.within is not None:
            first, second, seconds = expect.within
            start, end = self.marks.get(first), self.marks.get(second)
            if start is not None and end is not None and end - start > seconds:
                out.append(f"{second} {end - start:.1f}s after {first}: over its bound of {seconds:g}s")
            elif start is not None and end is None:
                out.append(f"{second} never came after {first} (bound {seconds:g}s)")
        if expect.max_write_gap is not None and self.longest_gap > expect.max_write_gap:
            out.append(f"a write outage of {self.longest_gap:.2f}s (none may exceed {expect.max_write_gap:g}s)")
        if expect.no_promotion_on is not None and self.timelines.get(expect.no_promotion_on):
            picks = ", ".join(f"{t} ({m})" for m, t in self.timelines[expect.no_promotion_on])
            out.append(f"{expect.no_promotion_on} promoted (selected timeline {picks}): a failover that must not be")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "summary": self.summary, "verdict": "PASS" if self.passed else "FAIL",
            "reasons": self.reasons, "acknowledged": self.acknowledged, "lost": len(self.lost),
            "lost_ids": self.lost[:20], "lost_acknowledged_at_s": [round(t, 3) for t in self.lost_at],
            "lost_in_window": len(self.lost_in_window),
            "loss_window_s": [round(t, 2) for t in self.loss_window] if self.loss_window else None,
            "unknown": self.unknown, "longest_write_gap_s": round(self.longest_gap, 3),
            "timelines_selected": {s: [{"member": m, "timeline": t} for m, t in picks]
                                   for s, picks in sorted(self.timelines.items())},
            "duplicate_timelines": duplicate_timelines(self.timelines),
            "two_writable_primaries": [{"at_s": round(t, 2), "members": m} for t, m in self.dual_primaries],
            "writability_probes": self.probes, "final_roles": self.final_roles, "final_leader": self.final_leader,
            "converged": self.converged, "marks_s": {k: round(v, 2) for k, v in sorted(self.marks.items())},
            "convergence_s": None if self.convergence is None else round(self.convergence, 2),
            "runs": [r.as_dict() for r in self.runs],
            "events": [{"at_s": round(t, 2), "event": e} for t, e in self.events],
            "duration_s": round(self.duration, 1),
        }

    def lines(self) -> list[str]:
        d = self.as_dict()
        window = (f" (+{d['lost_in_window']} inside the loss window {d['loss_window_s'][0]}-{d['loss_window_s'][1]} s,"
                  " allowed)" if self.loss_window else "")
        out = [f"drill {self.scenario}: {self.summary}", ""]
        out += [f"{t:7.2f}s  {e}" for t, e in self.events]
        out += ["", f"acknowledged writes   {self.acknowledged}",
                f"lost                  {len(self.lost)}{window}",
                *([f"lost acknowledged at  {', '.join(f'{t:.2f}' for t in self.lost_at)} s"] if self.lost_at else []),
                f"unknown (in flight)   {self.unknown}",
                f"longest write gap     {self.longest_gap:.2f} s"]
        for site, picks in sorted(self.timelines.items()):
            chosen = ", ".join(f"{t} ({m})" for m, t in picks) or "none"
            out.append(f"timelines selected    {site}: {chosen}")
        out.append(f"duplicate timelines   {', '.join(map(str, d['duplicate_timelines'])) or 'none'}")
        out.append(f"two writable primaries {'YES' if self.dual_primaries else 'never'} ({self.probes} probes)")
        roles = "; ".join(f"{s} {r['live']} (declared {r['declared']})" for s, r in sorted(self.final_roles.items()))
        out.append(f"final roles           {roles}")
        conv = f"{self.convergence:.1f} s after heal" if self.convergence is not None else "NOT converged"
        out.append(f"converged             {conv}")
        out.append("rolegen runs:")
        for r in self.runs:
            end = f"SIGKILLed after {r.killed_after:g}s" if r.killed_after is not None else f"exit {r.exit_code}"
            out.append(f"  {r.started:6.1f}s  {r.command}: {end} in {r.seconds:.1f}s")
            out += [f"           | {line}" for line in r.tail[-3:]]
        out += ["", f"{'PASS' if self.passed else 'FAIL'} ({self.duration:.0f} s)"]
        out += [f"  - {reason}" for reason in self.reasons]
        return out

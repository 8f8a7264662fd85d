"""The chaos checker: what must hold after a schedule, judged from observations only (the writer's records, the
prober's rounds, the members' logs, the PVCs seen in the API, each rolegen process's exit and output, and the
final state read from Patroni and the databases). It never imports rolegen's procedures: a bug there cannot
hide itself here. Pure: no lab, no clock.

Invariants (`Violation.invariant`):
  lost-write      an acknowledged write missing on the final leader, unless the fault model excuses it: a site
                  loss excuses what the lost site acknowledged from SHIP_SLACK seconds before the loss began until
                  the lab reported it done (it went dark somewhere in between: asynchronous replication had not
                  shipped it; the drills' window is the same); a successful `failover --accept-data-loss`
                  excuses what its old site acknowledged before it ended (counted apart: `accepted`)
  two-primaries   two members answered "not in recovery" at the same moment (the prober re-checks the first)
  timeline-twice  a timeline number selected on both sites
  pvc-unproven    a PVC deleted while no member of the other site was seen a writable primary around then
  rolegen-exit    a rolegen run that failed without a `hint:` line, printed a traceback, or never ended
  not-recovered   after the heal and the recovery: not one site leading with the other streaming, `rolegen
                  status` not 0, or the specs' roles not the live ones
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rolegen_lab.drills.report import duplicate_timelines

SHIP_SLACK = 1.0  # seconds: a lost site's acknowledged writes this old may not have shipped (loopback lag < 1 s)
PROOF_SLACK = 2.0  # seconds: a writable probe this long before a PVC's last sighting counts as proof at deletion
INVARIANTS = ("lost-write", "two-primaries", "timeline-twice", "pvc-unproven", "rolegen-exit", "not-recovered")


@dataclass(frozen=True)
class RunSeen:
    """One rolegen process, as the runner saw it (times in seconds since the schedule started)."""

    argv: tuple[str, ...]
    started: float
    ended: float
    exit_code: int | None  # None: never ended (killed by the runner at its limit)
    killed: bool = False  # SIGKILLed on purpose (a `killed` op): no exit to judge
    output: tuple[str, ...] = ()
    recovery: bool = False  # run by the recovery policy, after the schedule

    @property
    def text(self) -> str:
        return "rolegen " + " ".join(self.argv)

    @property
    def hint(self) -> bool:
        return any(line.startswith("hint:") for line in self.output)

    @property
    def traceback(self) -> bool:
        return any(line.startswith("Traceback (most recent call last)") for line in self.output)

    def as_dict(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "started_s": round(self.started, 2), "ended_s": round(self.ended, 2),
                "exit_code": self.exit_code, "killed": self.killed, "recovery": self.recovery,
                "tail": list(self.output[-6:])}


@dataclass(frozen=True)
class PvcDeletion:
    site: str
    name: str
    last_seen: float  # the claim was there then
    gone_at: float  # and not any more then


@dataclass
class Final:
    leader: str | None = None  # the site whose Patroni reports leader and whose master takes writes
    follower_streams: bool = False  # its peer is a standby leader streaming on the same timeline
    status_exit: int | None = None  # `rolegen status` after recovery
    roles: dict[str, dict[str, str | None]] = field(default_factory=dict)  # site -> {"live", "declared"}


@dataclass
class Observations:
    acknowledged: list[int] = field(default_factory=list)
    acknowledged_at: list[float] = field(default_factory=list)
    acknowledged_by: list[str] = field(default_factory=list)  # the site whose master acknowledged it
    missing: set[int] | None = None  # acknowledged ids absent on the final leader (None: could not be counted)
    site_losses: list[tuple[float, float, str]] = field(default_factory=list)  # (began, reported done, site)
    accepted: list[tuple[float, str]] = field(default_factory=list)  # (end of a --accept-data-loss failover, --to)
    dual_primaries: list[tuple[float, list[str]]] = field(default_factory=list)  # (when, ["site/member", ...])
    writable: list[tuple[float, list[str]]] = field(default_factory=list)  # every prober round
    timelines: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    pvc_deletions: list[PvcDeletion] = field(default_factory=list)
    runs: list[RunSeen] = field(default_factory=list)
    final: Final = field(default_factory=Final)


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"invariant": self.invariant, "detail": self.detail}


@dataclass
class Verdict:
    violations: list[Violation] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    excused: list[int] = field(default_factory=list)  # a site loss's window
    accepted: list[int] = field(default_factory=list)  # --accept-data-loss

    @property
    def passed(self) -> bool:
        return not self.violations


def split_missing(obs: Observations) -> tuple[list[int], list[int], list[int]]:
    """(lost, excused by a site loss, accepted with --accept-data-loss) among the missing ids."""
    lost: list[int] = []
    excused: list[int] = []
    accepted: list[int] = []
    for ident, at, by in zip(obs.acknowledged, obs.acknowledged_at, obs.acknowledged_by, strict=True):
        if obs.missing is None or ident not in obs.missing:
            continue
        if any(site == by and began - SHIP_SLACK <= at <= done for began, done, site in obs.site_losses):
            excused.append(ident)
        elif any(to != by and at <= ended for ended, to in obs.accepted):
            accepted.append(ident)
        else:
            lost.append(ident)
    return lost, excused, accepted


def _site(member: str) -> str:
    return member.split("/", 1)[0]


def pvc_problems(obs: Observations) -> list[str]:
    out = []
    for gone in obs.pvc_deletions:
        proof = [t for t, members in obs.writable
                 if gone.last_seen - PROOF_SLACK <= t <= gone.gone_at and any(_site(m) != gone.site for m in members)]
        if not proof:
            out.append(f"{gone.site} PVC {gone.name} deleted between {gone.last_seen:.1f}s and {gone.gone_at:.1f}s "
                       "while no member of the other site was seen a writable primary")
    return out


def run_problems(runs: list[RunSeen]) -> list[str]:
    out = []
    for run in runs:
        what = f"{run.text} at {run.started:.1f}s"
        last = run.output[-1] if run.output else "(no output)"
        if run.traceback:
            out.append(f"{what} printed a traceback: {last}")
        if run.killed:
            continue
        if run.exit_code is None:
            out.append(f"{what} did not end")
        elif run.exit_code != 0 and not run.hint and not (run.argv[:1] == ("status",) and run.exit_code == 1):
            # status exits 1 to report an unhealthy pair: a verdict, not a failure
            out.append(f"{what} exited {run.exit_code} without a hint naming the next command: {last}")
    return out


def final_problems(final: Final) -> list[str]:
    out = []
    if final.leader is None:
        out.append("no site leads (Patroni leader with a writable master) after recovery")
    elif not final.follower_streams:
        out.append(f"{final.leader} leads but its peer does not stream from it after recovery")
    if final.status_exit != 0:
        out.append(f"rolegen status exits {final.status_exit} after recovery")
    disagree = [f"{s}: live {r.get('live')}, declared {r.get('declared')}" for s, r in sorted(final.roles.items())
                if r.get("live") != r.get("declared")]
    if disagree:
        out.append("the specs disagree with the live roles: " + "; ".join(disagree))
    return out


def check(obs: Observations) -> Verdict:
    verdict = Verdict()
    add = verdict.violations.append
    if obs.missing is None:
        add(Violation("lost-write", "the acknowledged writes could not be counted on a final leader"))
    else:
        verdict.lost, verdict.excused, verdict.accepted = split_missing(obs)
        if verdict.lost:
            when = dict(zip(obs.acknowledged, obs.acknowledged_at, strict=True))
            first = ", ".join(f"{i} at {when[i]:.2f}s" for i in verdict.lost[:3])
            add(Violation("lost-write", f"{len(verdict.lost)} acknowledged write(s) lost (first: {first})"))
    if obs.dual_primaries:
        at, members = obs.dual_primaries[0]
        add(Violation("two-primaries", f"{len(obs.dual_primaries)} time(s), first at {at:.1f}s: {', '.join(members)}"))
    dups = duplicate_timelines(obs.timelines)
    if dups:
        add(Violation("timeline-twice", f"timeline number(s) {dups} selected on both sites"))
    verdict.violations += [Violation("pvc-unproven", p) for p in pvc_problems(obs)]
    verdict.violations += [Violation("rolegen-exit", p) for p in run_problems(obs.runs)]
    verdict.violations += [Violation("not-recovered", p) for p in final_problems(obs.final)]
    return verdict

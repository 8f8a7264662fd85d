"""`rolegen diff`: each environment's rendered values, DCS config, role and dependents against its live site.

Read-only (site_diff.read_plan takes each snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolegen.cluster.dependents_diff import with_dependents
from rolegen.cluster.pair import site_pair
from rolegen.cluster.site_diff import SitePlan, read_plan
from rolegen.cluster.site_state import SiteState
from rolegen.cluster.slot_status import SlotStatus, pair_slot_status
from rolegen.errors import RolegenError, UsageError
from rolegen.offline.workspace import load_workspace


@dataclass(frozen=True)
class DiffOptions:
    envs: list[str] = field(default_factory=list)
    all_envs: bool = False
    kubeconfig: Path | None = None
    context: str | None = None  # overrides kubernetes.context of the one selected spec


@dataclass(frozen=True)
class DiffResult:
    plans: list[SitePlan]
    slots: dict[str, SlotStatus] = field(default_factory=dict)  # the DR slot of each leading site read

    @property
    def drift(self) -> bool:
        return any(p.drift for p in self.plans)

    @property
    def lost(self) -> list[SlotStatus]:
        """DR slots whose standby needs WAL the leader removed: an error (exit 1), not drift apply could fix."""
        return [s for s in self.slots.values() if s.problem]

    def lost_error(self) -> RolegenError:
        lost = self.lost
        return RolegenError("; ".join(str(s.problem) for s in lost),
                            hint="re-seed: " + "; ".join(str(s.next_command) for s in lost))

    def as_dict(self) -> dict[str, Any]:
        envs = [{**p.as_dict(), "slot": self._slot(p)} for p in self.plans]
        return {"drift": self.drift, "environments": envs}

    def _slot(self, plan: SitePlan) -> dict[str, Any] | None:
        slot = self.slots.get(plan.environment)
        return None if slot is None else slot.as_dict()

    def lines(self) -> list[str]:
        out = []
        for plan in self.plans:
            lines = plan.lines()
            slot = self.slots.get(plan.environment)
            if slot is not None:
                lines.insert(-1, f"  slot     {slot.line()}")
                if slot.problem:
                    lines.insert(-1, f"  slot     LOST: {slot.problem}; re-seed: {slot.next_command}")
            out += lines
        return out


def run(env_dir: Path, opts: DiffOptions) -> DiffResult:
    if opts.context is not None and (opts.all_envs or len(set(opts.envs)) != 1):
        raise UsageError("--context names one cluster: use it with exactly one --env")
    ws = load_workspace(env_dir)
    envs = ws.select(opts.envs, opts.all_envs)
    pairs = [site_pair(ws, e, kubeconfig=opts.kubeconfig, context=opts.context) for e in envs]
    plans = [with_dependents(read_plan(pair.to, pair.cluster(pair.to)), pair.to, pair.cluster(pair.to))
             for pair in pairs]
    states: dict[str, SiteState | None] = {p.environment: p.site for p in plans}
    return DiffResult(plans, pair_slot_status(ws.specs, states))

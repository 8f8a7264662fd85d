"""`rolegen diff`: each environment's rendered values, DCS config and role against its live site.

Read-only (plan.read_plan takes each snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolegen.errors import UsageError
from rolegen.plan import SitePlan, plan_lines, read_plan
from rolegen.workspace import load_workspace


@dataclass(frozen=True)
class DiffOptions:
    envs: list[str] = field(default_factory=list)
    all_envs: bool = False
    kubeconfig: Path | None = None
    context: str | None = None  # overrides kubernetes.context of the one selected spec


@dataclass(frozen=True)
class DiffResult:
    plans: list[SitePlan]

    @property
    def drift(self) -> bool:
        return any(p.drift for p in self.plans)

    def as_dict(self) -> dict[str, Any]:
        return {"drift": self.drift, "environments": [p.as_dict() for p in self.plans]}

    def lines(self) -> list[str]:
        return [line for p in self.plans for line in plan_lines(p)]


def run(env_dir: Path, opts: DiffOptions) -> DiffResult:
    if opts.context is not None and (opts.all_envs or len(set(opts.envs)) != 1):
        raise UsageError("--context names one cluster: use it with exactly one --env")
    ws = load_workspace(env_dir)
    envs = ws.select(opts.envs, opts.all_envs)
    return DiffResult([read_plan(ws.specs[e], opts.kubeconfig, opts.context)[0] for e in envs])

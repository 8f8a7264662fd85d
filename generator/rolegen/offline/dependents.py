"""Dependents and traffic hooks of a spec (README "Applications"): the workloads whose shape follows the site's
role, and the commands a role change runs around its demotion and promotion. Typed data built from a spec that
passed schema validation, and the pure functions that give each dependent its shape for a role. No IO here.

A dependent is either a Helm release with values per role (`kind: helm`), or a Deployment or StatefulSet scaled
per role. Its shape for a role is one document: the release's values, or the workload's merge patch
(`{spec: {replicas: N}}`); rendered into generated/<env>/dependents/<name>.yaml, applied by `rolegen apply`,
and by the role verbs around the database's own move.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

HELM = "helm"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
KINDS = (HELM, *WORKLOAD_KINDS)
DEFAULT_TIMEOUT = 300.0  # seconds a dependent has to reach its shape (scaled, rolled out, or gone)
DEFAULT_HOOK_TIMEOUT = 60.0

# The phases of a role change a hook may run at, in the order a switchover reaches them. The demoted site's
# spec declares the `*_demote` ones, the promoted site's the `*_promote` ones: each site says what it needs.
HOOK_PHASES = ("before_demote", "after_demote", "before_promote", "after_promote")


@dataclass(frozen=True)
class Dependent:
    """One `dependents[]` entry, defaults filled in. `replicas` (workloads) and `role_values` (helm) are keyed by
    role (leader, standby-leader); `values` are a helm release's values for both roles."""

    name: str
    kind: str
    timeout: float = DEFAULT_TIMEOUT
    workload: str = ""  # the Deployment/StatefulSet (default: name)
    replicas: dict[str, int] = field(default_factory=dict)
    release: str = ""  # the Helm release (default: name)
    chart: str = ""  # a path, an oci:// reference, or a chart name in `repository`
    version: str | None = None
    repository: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    role_values: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def helm(self) -> bool:
        return self.kind == HELM

    @property
    def target(self) -> str:
        """What it names on the cluster, for people: `helm release identity`, `Deployment web`."""
        return f"helm release {self.release}" if self.helm else f"{self.kind} {self.workload}"

    @property
    def resource(self) -> str:
        """kubectl's resource name of a workload dependent (deployment, statefulset)."""
        return self.kind.lower()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dependent:
        name = data["name"]
        return cls(
            name=name,
            kind=data["kind"],
            timeout=float(data.get("timeout", DEFAULT_TIMEOUT)),
            workload=data.get("workload", name) if data["kind"] != HELM else "",
            replicas={role: int(n) for role, n in (data.get("replicas") or {}).items()},
            release=data.get("release", name) if data["kind"] == HELM else "",
            chart=data.get("chart", ""),
            version=data.get("version"),
            repository=data.get("repository"),
            values=copy.deepcopy(data.get("values") or {}),
            role_values=copy.deepcopy(data.get("role_values") or {}),
        )

    def shape(self, role: str) -> dict[str, Any]:
        """What the dependent is at a site of `role`: its release's values, or its workload's merge patch."""
        if self.helm:
            return merge(self.values, self.role_values.get(role, {}))
        return {"spec": {"replicas": self.replicas[role]}}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` deep-merged onto `base` (maps merged key by key, anything else replaced), as Helm merges values."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Hook:
    """One `hooks.<phase>`: a command (argv, no shell) and how long it may run."""

    phase: str
    command: tuple[str, ...]
    timeout: float = DEFAULT_HOOK_TIMEOUT

    @property
    def shown(self) -> str:
        return " ".join(self.command)


def dependents_from(data: list[dict[str, Any]] | None) -> tuple[Dependent, ...]:
    return tuple(Dependent.from_dict(item) for item in data or ())


def hooks_from(data: dict[str, Any] | None) -> dict[str, Hook]:
    return {
        phase: Hook(phase, tuple(hook["command"]), float(hook.get("timeout", DEFAULT_HOOK_TIMEOUT)))
        for phase, hook in (data or {}).items()
    }

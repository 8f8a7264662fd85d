"""Dependents on a live site (README "Applications"): what each one is (its workload's replicas and rollout, or its
Helm release and the workloads that release runs), the one write that gives it its shape for a role (`helm
upgrade --install` with that role's values, or `kubectl scale`), and the wait until it has that shape.

"Has its shape" is observed, never assumed from the write: every workload it runs has been seen by its controller
(observedGeneration), and either runs its replicas ready and updated with no old Pod left, or, scaled to zero,
has no Pod left at all (a Terminating Pod may still write). `state.blocker(role)` says what is missing (pure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rolegen.cluster.helm import ReleaseInfo, Releases
from rolegen.cluster.kubectl import Cluster
from rolegen.cluster.wait import poll
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.offline.dependents import Dependent

INSTANCE_LABEL = "app.kubernetes.io/instance"  # what Helm charts put on the workloads of a release


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet as read: its declared replicas, its status, and the Pods its selector matches."""

    kind: str
    name: str
    replicas: int
    ready: int = 0
    updated: int = 0
    current: int = 0  # status.replicas: Pods of any revision
    generation: int = 0
    observed: int = 0
    pods: int = 0

    def blocker(self) -> str | None:
        where = f"{self.kind} {self.name}"
        if self.observed < self.generation:
            return f"{where}: its controller has not acted on its last change yet"
        if self.replicas == 0:
            return f"{where}: {self.pods} Pod(s) still there" if self.pods else None
        if self.ready < self.replicas or self.updated < self.replicas or self.current > self.replicas:
            return f"{where}: {self.ready}/{self.replicas} ready, {self.updated} updated, {self.current} running"
        return None

    def line(self) -> str:
        pods = f", {self.pods} Pod(s)" if self.replicas == 0 and self.pods else ""
        return f"{self.kind} {self.name} {self.ready}/{self.replicas} ready{pods}"


@dataclass(frozen=True)
class DependentState:
    """One dependent as read. `found`: its workload or release exists; `workloads`: its own, or its release's."""

    dependent: Dependent
    found: bool
    workloads: tuple[Workload, ...] = ()
    release: ReleaseInfo | None = None

    def blocker(self, role: str) -> str | None:
        """What keeps it from its shape for `role` (None: it has it). Pure: from what was read."""
        dep = self.dependent
        if not self.found:
            return f"{dep.target} not found"
        if dep.helm:
            assert self.release is not None
            if self.release.status != "deployed":
                return f"{dep.target} is {self.release.status}"
            if self.release.values != dep.shape(role):
                return f"{dep.target} runs other values than its {role} ones"
        else:
            want = dep.replicas[role]
            if self.workloads and self.workloads[0].replicas != want:
                return f"{dep.target} is scaled to {self.workloads[0].replicas}, not {want}"
        return next((b for b in (w.blocker() for w in self.workloads) if b is not None), None)

    def line(self) -> str:
        """For people: `web: Deployment web 3/3 ready`, `identity: helm release identity rev 4 (deployed): ...`."""
        dep = self.dependent
        if not self.found:
            return f"{dep.name}: {dep.target} not found"
        head = f"{dep.name}: "
        if dep.helm and self.release is not None:
            head += f"{dep.target} rev {self.release.revision} ({self.release.status})"
            return head + (": " + ", ".join(w.line() for w in self.workloads) if self.workloads else "")
        return head + ", ".join(w.line() for w in self.workloads)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.dependent.name,
            "kind": self.dependent.kind,
            "found": self.found,
            "revision": self.release.revision if self.release else None,
            "workloads": [{"kind": w.kind, "name": w.name, "replicas": w.replicas, "ready": w.ready,
                           "pods": w.pods} for w in self.workloads],
        }


def workload(obj: dict[str, Any], pods: int) -> Workload:
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, obj.get("metadata") or {}
    return Workload(
        kind=obj.get("kind", ""),
        name=meta.get("name", ""),
        replicas=int(spec.get("replicas", 1)),  # the API's own default
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        current=int(status.get("replicas") or 0),
        generation=int(meta.get("generation") or 0),
        observed=int(status.get("observedGeneration") or 0),
        pods=pods,
    )


def _pods(cluster: Cluster, obj: dict[str, Any]) -> int:
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return len(cluster.list("pods", selector)) if selector else 0


def read_dependent(cluster: Cluster, dep: Dependent) -> DependentState:
    if not dep.helm:
        obj = cluster.get(dep.resource, dep.workload)
        if obj is None:
            return DependentState(dep, False)
        return DependentState(dep, True, (workload(obj, _pods(cluster, obj)),))
    release = Releases(cluster).get(dep.release)
    if release is None:
        return DependentState(dep, False)
    objects = cluster.list("deployments,statefulsets", f"{INSTANCE_LABEL}={dep.release}")
    found = tuple(sorted((workload(o, _pods(cluster, o)) for o in objects), key=lambda w: (w.kind, w.name)))
    return DependentState(dep, True, found, release)


def read_all(cluster: Cluster, deps: tuple[Dependent, ...]) -> tuple[DependentState, ...]:
    return tuple(read_dependent(cluster, dep) for dep in deps)


def write_shape(cluster: Cluster, namespace: str, dep: Dependent, role: str) -> str:
    """The one write that gives `dep` its shape for `role`; returns what it did, for the log. A workload that does
    not exist is not created: rolegen scales what the application's own deployment created."""
    if dep.helm:
        release = Releases(cluster).upgrade_install(dep.release, dep.shape(role), chart=dep.chart,
                                                    version=dep.version, repository=dep.repository)
        return f"helm upgrade --install {dep.release}: revision {release.revision} ({release.status})"
    cluster.scale(dep.resource, dep.workload, dep.replicas[role])
    return f"kubectl -n {namespace} scale {dep.resource} {dep.workload} --replicas={dep.replicas[role]}"


class DependentNotReady(WaitTimedOut):
    """A dependent did not reach its shape within its timeout; `last` is its DependentState as last read."""


def reach(cluster: Cluster, namespace: str, dep: Dependent, role: str, log: Callable[[str], None],
          every: float = 1.0) -> DependentState:
    """Give `dep` its shape for `role` (written only when the site shows another) and wait, up to its timeout,
    until the site shows it. Raises DependentNotReady with the last state; a failed read or write propagates."""
    state = read_dependent(cluster, dep)
    if state.blocker(role) is None:
        log(f"   {state.line()}: already its {role} shape")
        return state
    if not state.found and not dep.helm:
        raise DependentNotReady(f"{dep.target} not found on context {cluster.name}: rolegen scales it, never "
                                "creates it", what=f"{dep.name} to reach its {role} shape", last=state)
    if _needs_write(state, role):
        log(f"   {dep.name}: {write_shape(cluster, namespace, dep, role)}")
    shown: list[str] = []

    def seen(now: DependentState, elapsed: float) -> None:
        line = now.line()
        if not shown or shown[-1] != line:
            log(f"   {line} ({elapsed:.0f}s)")
            shown.append(line)

    what = f"{dep.name} to reach its {role} shape"
    try:
        return poll(lambda: read_dependent(cluster, dep), lambda now: now.blocker(role) is None,
                    timeout=dep.timeout, every=every, what=what, seen=seen, sleep_first=True)
    except WaitTimedOut as out:
        assert isinstance(out.last, DependentState)
        raise DependentNotReady(f"{dep.name} did not reach its {role} shape within {dep.timeout:.0f}s "
                                f"({out.last.blocker(role)})", what=what, last=out.last) from None


def _needs_write(state: DependentState, role: str) -> bool:
    dep = state.dependent
    if dep.helm:
        return state.release is None or state.release.status != "deployed" or state.release.values != dep.shape(role)
    return bool(state.workloads) and state.workloads[0].replicas != dep.replicas[role]



def read_for_status(cluster: Cluster, deps: tuple[Dependent, ...]) -> tuple[tuple[DependentState, ...], str | None]:
    """`rolegen status`'s read: the states, or the error that stopped it (status shows the sites regardless)."""
    try:
        return read_all(cluster, deps), None
    except RolegenError as exc:
        return (), exc.message


def status_problems(env: str, role: str, states: tuple[DependentState, ...], error: str | None) -> list[str]:
    """One line per dependent not in its shape for `role` (the site's declared role), naming what clears it."""
    if error is not None:
        return [f"{env} dependents unreadable ({error})"]
    return [f"{env} dependent {blocker}; clear: rolegen apply --env {env}"
            for state in states if (blocker := state.blocker(role)) is not None]

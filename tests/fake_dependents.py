"""One site's applications in memory, for the dependents' code paths (rolegen.cluster.dependents): Deployments and
StatefulSets with a controller that moves one Pod per read towards their replicas, the Pods their selectors match,
and Helm releases whose chart runs one Deployment sized by `replicaCount`. `stuck` workloads never get a Pod
ready (an image that does not pull), `lingering` ones keep their Pods; `writes` keeps every write in order."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from rolegen.cluster.dependents import INSTANCE_LABEL
from rolegen.cluster.helm import ReleaseInfo

KINDS = {"deployment": "Deployment", "deployments": "Deployment", "statefulset": "StatefulSet",
         "statefulsets": "StatefulSet"}


class FakeApps:
    """The cluster client calls the dependents make (get, list, scale), on one site's workloads."""

    def __init__(self, name: str = "gold") -> None:
        self.name = name
        self.workloads: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], int] = {}  # Pods each workload runs (all ready once there)
        self.stuck: set[str] = set()
        self.lingering: set[str] = set()  # workloads whose Pods never go (a finalizer, a node gone)
        self.writes: list[tuple[str, ...]] = []
        self.releases: dict[str, ReleaseInfo] = {}

    def add(self, kind: str, name: str, replicas: int, labels: dict[str, str] | None = None) -> None:
        self.workloads[(kind, name)] = {
            "kind": kind,
            "metadata": {"name": name, "generation": 1, "labels": dict(labels or {})},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
            "status": {},
        }
        self.pods[(kind, name)] = replicas
        self._status(kind, name)

    def _status(self, kind: str, name: str) -> None:
        obj, pods = self.workloads[(kind, name)], self.pods[(kind, name)]
        ready = 0 if name in self.stuck else pods
        obj["status"] = {"replicas": pods, "readyReplicas": ready, "updatedReplicas": pods,
                         "observedGeneration": obj["metadata"]["generation"]}

    def _tick(self) -> None:
        """The controllers: one Pod more or less per read, towards each workload's replicas."""
        for (kind, name), obj in self.workloads.items():
            want, have = obj["spec"]["replicas"], self.pods[(kind, name)]
            if have != want and not (name in self.lingering and want < have):
                self.pods[(kind, name)] = have + (1 if want > have else -1)
            self._status(kind, name)

    def settle(self) -> None:
        """Every controller done: each workload runs its replicas."""
        for (kind, name), obj in self.workloads.items():
            self.pods[(kind, name)] = obj["spec"]["replicas"]
            self._status(kind, name)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        self._tick()
        found = self.workloads.get((KINDS[kind], name))
        return copy.deepcopy(found)

    def list(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        wanted = dict(part.split("=", 1) for part in (selector or "").split(",") if part)
        if kind == "pods":
            [(_, app)] = wanted.items()
            count = next((n for (_, name), n in self.pods.items() if name == app), 0)
            return [{"kind": "Pod", "metadata": {"name": f"{app}-{i}"}} for i in range(count)]
        self._tick()
        kinds = {KINDS[k] for k in kind.split(",")}
        return [copy.deepcopy(o) for (k, _), o in sorted(self.workloads.items())
                if k in kinds and all(o["metadata"]["labels"].get(key) == v for key, v in wanted.items())]

    def scale(self, kind: str, name: str, replicas: int) -> None:
        self.writes.append(("scale", name, str(replicas)))
        obj = self.workloads[(KINDS[kind], name)]
        obj["spec"]["replicas"] = replicas
        obj["metadata"]["generation"] += 1


class FakeReleases:
    """rolegen.cluster.helm.Releases on FakeApps: an upgrade sets the values and (re)sizes the release's
    Deployment from `replicaCount`."""

    apps: ClassVar[dict[str, FakeApps]] = {}  # by cluster name

    def __init__(self, cluster: Any) -> None:
        self.site = FakeReleases.apps[cluster.name]

    def get(self, name: str) -> ReleaseInfo | None:
        return self.site.releases.get(name)

    def upgrade_install(self, name: str, values: dict[str, Any], chart: Any = None, config_map: str | None = None,
                        *, version: str | None = None, repository: str | None = None) -> ReleaseInfo:
        self.site.writes.append(("helm", name, str(chart), str(version), str(values.get("replicaCount"))))
        old = self.site.releases.get(name)
        release = ReleaseInfo(name, (old.revision if old else 0) + 1, "deployed", copy.deepcopy(values))
        self.site.releases[name] = release
        replicas = int(values.get("replicaCount", 1))
        if ("Deployment", name) in self.site.workloads:
            self.site.scale("deployment", name, replicas)
            self.site.writes.pop()  # the chart's own change, not a write rolegen made
        else:
            self.site.add("Deployment", name, 0, {INSTANCE_LABEL: name})
            self.site.workloads[("Deployment", name)]["spec"]["replicas"] = replicas
        return release

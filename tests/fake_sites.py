"""Two sites in memory for the wipe paths (failback's re-seed, `rolegen reseed`): the objects `read_site` lists,
PVCs, the StatefulSet, and a Patroni that renews its leader lock while it is alive. `events` keeps the writes in
order, with what existed at each scale-up, so a test can say what a user would have lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any, ClassVar

from rolegen.cluster.kubectl import AlreadyExists, ClusterUnreachable, Conflict
from rolegen.offline.spec import Spec
from rolegen.procedures.base import Pair, load_pair

ENVIRONMENTS = Path(__file__).resolve().parent.parent / "environments"
_versions = count(100)


def _meta(name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "labels": dict(labels), "annotations": dict(annotations or {}),
            "resourceVersion": str(next(_versions))}


def pod(name: str, labels: dict[str, str], role: str, timeline: int, *, running: bool = True) -> dict[str, Any]:
    status = {"role": role, "state": "running", "timeline": timeline, "xlog_location": 5000, "replay_lsn": 5000}
    if role == "standby_leader":
        status["replication_state"] = "streaming"
    state = {"running": {}} if running else {"terminated": {}}
    return {"kind": "Pod", "metadata": _meta(name, {**labels, "role": "x"}, {"status": json.dumps(status)}),
            "status": {"containerStatuses": [{"name": "patroni", "state": state, "restartCount": 0}]}}


class FakeSite:
    """One site's namespace. `alive`: its Patroni renews `<scope>-leader` (a new resourceVersion per read)."""

    def __init__(self, spec: Spec, *, leads: bool, system_id: str = "7", timeline: int = 4) -> None:
        self.spec, self.alive, self.timeline = spec, True, timeline
        self.labels = {**spec.labels, "cluster-name": spec.scope}
        self.events: list[tuple[str, Any]] = []
        self.pvc_lingers = 0  # reads a deleted PVC stays (Terminating) before it is gone
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        config: dict[str, Any] = {"ttl": 1, "loop_wait": 1}
        if not leads:
            config["standby_cluster"] = {"host": spec.peer.host, "port": spec.peer.port}
        self.put("ConfigMap", spec.config_map, {"config": json.dumps(config), "initialize": system_id})
        members = spec.members["replicas"] if leads else 0
        self.put("StatefulSet", spec.release, spec={"replicas": members})
        for n in range(spec.members["replicas"]):
            self.put("PersistentVolumeClaim", f"data-{spec.release}-{n}")
        for n in range(members):
            name = f"{spec.environment}-{n}"
            self.objects[("Pod", name)] = pod(name, self.labels, "primary" if n == 0 else "replica", timeline)
        if leads:
            self.lock(f"{spec.environment}-0")

    def put(self, kind: str, name: str, annotations: dict[str, str] | None = None, **body: Any) -> None:
        self.objects[(kind, name)] = {"kind": kind, "metadata": _meta(name, self.labels, annotations), **body}

    def lock(self, holder: str) -> None:
        now = datetime.now(UTC).isoformat()
        self.put("ConfigMap", self.spec.leader_map, {"leader": holder, "renewTime": now, "ttl": "1"})

    def named(self, kind: str) -> list[str]:
        return sorted(name for k, name in self.objects if k == kind)


class FakeCluster:
    """rolegen.cluster.kubectl.Cluster's calls the wipe paths make, on one FakeSite."""

    KINDS: ClassVar[dict[str, str]] = {"configmap": "ConfigMap", "configmaps": "ConfigMap", "pods": "Pod",
                                       "pvc": "PersistentVolumeClaim", "statefulset": "StatefulSet"}

    def __init__(self, site: FakeSite) -> None:
        self.site = site
        self.terminating: dict[str, int] = {}

    def proxy_site(self) -> None:
        """A role verb opens an API proxy per site (SitePair.live): a site in memory has none, as a site whose
        client cannot be chosen; its calls stay these."""
        raise ClusterUnreachable("in memory: no API proxy")

    def session(self) -> None:
        return None

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        found = self.site.objects.get((self.KINDS[kind], name))
        return json.loads(json.dumps(found)) if found is not None else None

    def list(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        site = self.site
        lock = site.objects.get(("ConfigMap", site.spec.leader_map))
        if site.alive and lock is not None and lock["metadata"]["annotations"].get("leader"):
            site.lock(lock["metadata"]["annotations"]["leader"])
        for name in list(self.terminating):
            self.terminating[name] -= 1
            if self.terminating[name] < 0:
                del self.terminating[name]
                site.objects.pop(("PersistentVolumeClaim", name), None)
        kinds = {self.KINDS[k] for k in kind.split(",")}
        return [json.loads(json.dumps(o)) for (k, _), o in sorted(site.objects.items()) if k in kinds]

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None) -> str:
        obj = self.site.objects[(self.KINDS[kind], name)]
        if resource_version is not None and resource_version != obj["metadata"]["resourceVersion"]:
            raise Conflict(f"patch {kind} {name}: changed by someone else")
        for key, value in patch.get("metadata", {}).get("annotations", {}).items():
            if value is None:
                obj["metadata"].setdefault("annotations", {}).pop(key, None)
            else:
                obj["metadata"].setdefault("annotations", {})[key] = value
        obj["metadata"]["resourceVersion"] = str(next(_versions))
        self.site.events.append(("patch", name))
        return str(obj["metadata"]["resourceVersion"])

    def create(self, obj: dict[str, Any]) -> None:
        key = (obj["kind"], obj["metadata"]["name"])
        if key in self.site.objects:
            raise AlreadyExists(f"create {key}: already exists")
        self.site.objects[key] = {**json.loads(json.dumps(obj)),
                                  "metadata": {**obj["metadata"], "resourceVersion": str(next(_versions))}}
        self.site.events.append(("create", obj["metadata"]["name"]))

    def scale(self, kind: str, name: str, replicas: int) -> None:
        site = self.site
        site.objects[(self.KINDS[kind], name)]["spec"]["replicas"] = replicas
        config = site.objects.get(("ConfigMap", site.spec.config_map))
        site.events.append(("scale", {"replicas": replicas, "pvcs": site.named("PersistentVolumeClaim"),
                                      "config": json.loads(config["metadata"]["annotations"].get("config", "null"))
                                      if config else None}))
        for pod_name in [n for k, n in site.objects if k == "Pod"]:
            del site.objects[("Pod", pod_name)]
        if replicas:  # the clone: a standby leader streaming on the peer's timeline
            leader = f"{site.spec.environment}-0"
            site.objects[("Pod", leader)] = pod(leader, site.labels, "standby_leader", site.timeline)
            site.lock(leader)

    def delete(self, kind: str, name: str) -> None:
        self.site.events.append(("delete", name))
        if (self.KINDS[kind], name) in self.site.objects:
            self.terminating[name] = self.site.pvc_lingers


def sites(to: str) -> tuple[Pair, FakeSite, FakeSite]:
    """A pair whose target `to` is a stopped standby (re-seed it) and whose peer leads, alive."""
    pair = load_pair(ENVIRONMENTS, to, log=lambda _: None)
    target, source = FakeSite(pair.to, leads=False), FakeSite(pair.other, leads=True)
    pair.clusters = {pair.to.environment: FakeCluster(target), pair.other.environment: FakeCluster(source)}  # type: ignore[dict-item]
    return pair, target, source

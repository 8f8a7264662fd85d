"""What a site looks like right now, read from API objects only (no exec): the DCS ConfigMaps Patroni keeps,
its member Pods' `status` annotations and role labels."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rolegen.kube import Cluster
from rolegen.spec import Spec

# Patroni's own annotations on <scope>-config: shown by diff, never counted as drift.
PATRONI_OWNED = ("initialize", "history")


@dataclass(frozen=True)
class Member:
    name: str
    role: str | None  # leader | standby-leader | replica | None (not running / unknown)
    state: str | None
    timeline: int | None
    lsn: int | None  # Patroni's xlog_location: write location on a primary, max(receive, replay) on a standby
    label: str | None  # the Pod's role label
    replay_lsn: int | None = None  # standbys only: what has been replayed (the switchover gate)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "role", "state", "timeline", "lsn", "replay_lsn", "label")}


_ROLES = {"primary": "leader", "master": "leader", "standby_leader": "standby-leader", "replica": "replica"}


def member_from_pod(pod: dict[str, Any]) -> Member:
    meta = pod.get("metadata", {})
    try:
        status = json.loads((meta.get("annotations") or {}).get("status", "{}"))
    except ValueError:
        status = {}
    return Member(
        name=meta.get("name", "?"),
        role=_ROLES.get(status.get("role", "")),
        state=status.get("replication_state") or status.get("state"),
        timeline=status.get("timeline"),
        lsn=_int(status.get("xlog_location")),
        label=(meta.get("labels") or {}).get("role"),
        replay_lsn=_int(status.get("replay_lsn")),
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


@dataclass
class SiteState:
    """One snapshot of a site; `config` is None when `<scope>-config` or its annotation is missing."""

    environment: str
    config: dict[str, Any] | None
    config_resource_version: str | None
    config_annotations: dict[str, str] = field(default_factory=dict)
    leader_annotations: dict[str, str] = field(default_factory=dict)
    members: list[Member] = field(default_factory=list)
    read_at: float = field(default_factory=time.time)

    @property
    def dcs_role(self) -> str | None:
        """The role the DCS config declares: standby_cluster set means standby-leader."""
        if self.config is None:
            return None
        return "standby-leader" if self.config.get("standby_cluster") else "leader"

    @property
    def live_role(self) -> str | None:
        """The role Patroni reports on the member holding a live leader lock (None: nobody leads)."""
        member = self.leader_member
        return member.role if member else None

    @property
    def lock_holder(self) -> str | None:
        """The member holding `<scope>-leader`, if its lock has not expired. A Pod's `status` annotation
        outlives a crashed member; the lock's renewTime + ttl does not."""
        holder = self.leader_annotations.get("leader")
        renewed, ttl = self.leader_annotations.get("renewTime"), self.leader_annotations.get("ttl")
        if not holder or not renewed:
            return None
        try:
            expires = datetime.fromisoformat(renewed).timestamp() + float(ttl or 30)
        except ValueError:
            return None
        return holder if expires > self.read_at else None

    @property
    def leader_member(self) -> Member | None:
        holder = self.lock_holder
        return next((m for m in self.members if m.name == holder and m.role in ("leader", "standby-leader")), None)

    @property
    def initialize(self) -> str | None:
        return self.config_annotations.get("initialize") or None

    @property
    def optime(self) -> int | None:
        value = self.leader_annotations.get("optime")
        return int(value) if value and value.isdigit() else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "dcs_role": self.dcs_role,
            "live_role": self.live_role,
            "initialize": self.initialize,
            "optime": self.optime,
            "leader": self.leader_annotations.get("leader"),
            "members": [m.as_dict() for m in self.members],
        }


def read_site(spec: Spec, cluster: Cluster) -> SiteState:
    """One kubectl call: the DCS ConfigMaps and the member Pods all carry Patroni's selector labels."""
    selector = ",".join([f"{k}={v}" for k, v in sorted(spec.labels.items())] + [f"cluster-name={spec.scope}"])
    objects = cluster.list("configmaps,pods", selector)
    maps = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "ConfigMap"}
    pods = [o for o in objects if o.get("kind") == "Pod"]
    cm = maps.get(spec.config_map)
    annotations: dict[str, str] = ((cm or {}).get("metadata", {}).get("annotations")) or {}
    config: dict[str, Any] | None = None
    if "config" in annotations:
        try:
            parsed = json.loads(annotations["config"])
            config = parsed if isinstance(parsed, dict) else None
        except ValueError:
            config = None
    leader = maps.get(spec.leader_map)
    return SiteState(
        environment=spec.environment,
        config=config,
        config_resource_version=(cm or {}).get("metadata", {}).get("resourceVersion"),
        config_annotations=annotations,
        leader_annotations=((leader or {}).get("metadata", {}).get("annotations")) or {},
        members=sorted((member_from_pod(p) for p in pods), key=lambda m: m.name),
    )


def cluster_for(spec: Spec, kubeconfig: Any = None, context: str | None = None) -> Cluster:
    """The cluster of `spec`: its kubeconfig context and namespace, unless overridden on the command line."""
    return Cluster(namespace=spec.namespace, context=context or spec.context, kubeconfig=kubeconfig)

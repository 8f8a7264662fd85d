"""What a site looks like right now (`SiteState`, `read_site`), read from API objects only (no exec): the DCS
ConfigMaps Patroni keeps, its member Pods' `status` annotations and role labels. Owns the one map of Patroni's
role names to rolegen's (`rolegen_role`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rolegen.cluster.control import Control
from rolegen.cluster.kubectl import Cluster
from rolegen.cluster.records import Records, records_map
from rolegen.cluster.storage import Storage
from rolegen.offline.spec import Spec

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
    # The Patroni container per the kubelet's Pod status: True running, False not running, None unknown
    # (no containerStatuses reported). A stopped container cannot run a postmaster: the kubelet kills it too.
    container_running: bool | None = None
    status_text: str = ""  # the raw `status` annotation: a change proves Patroni ran a loop since
    restarts: int | None = None  # the kubelet's restartCount: a change means the member crashed and came back
    # The Pod's metadata.uid: a Pod deleted and recreated under the same name starts again at restartCount 0,
    # so only its uid tells it apart.
    uid: str | None = None
    storage: Storage | None = None  # the member's own storage figures (cluster.storage), when it publishes them
    control: Control | None = None  # its pg_control as it published it (cluster.control)

    @property
    def may_write(self) -> bool:
        """Possibly a writable primary: Patroni last reported a writable role and the container may be running.
        A hung Patroni (or one that crashed with its postmaster alive) keeps this True: its last word counts."""
        return self.role in WRITABLE_ROLES and self.container_running is not False

    def as_dict(self) -> dict[str, Any]:
        fields = ("name", "role", "state", "timeline", "lsn", "replay_lsn", "label", "container_running")
        return {**{k: getattr(self, k) for k in fields}, "storage": self.storage.as_dict() if self.storage else None}


# Patroni's role values (its REST API and the Pods' `status` annotations) in rolegen's vocabulary; the one
# place that maps them. `promoted` is a member in the middle of its promotion: it may accept writes a moment
# later, so it counts as writable, like a primary.
_ROLES = {
    "primary": "leader",
    "master": "leader",
    "promoted": "promoted",
    "standby_leader": "standby-leader",
    "replica": "replica",
    "demoted": "demoted",
}
WRITABLE_ROLES = ("leader", "promoted")


def rolegen_role(patroni_role: Any) -> str | None:
    """Patroni's `role` value in rolegen's vocabulary (leader, standby-leader, ...); None when unknown."""
    return _ROLES.get(patroni_role) if isinstance(patroni_role, str) else None


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return [s for s in statuses if s.get("name") == "patroni"] or statuses


def _container_running(pod: dict[str, Any]) -> bool | None:
    mine = _containers(pod)
    if not mine:
        return None
    return all("running" in (s.get("state") or {}) for s in mine)


def _restarts(pod: dict[str, Any]) -> int | None:
    counts = [s.get("restartCount") for s in _containers(pod)]
    return sum(c for c in counts if isinstance(c, int)) if counts else None


def member_from_pod(pod: dict[str, Any]) -> Member:
    meta = pod.get("metadata", {})
    text = (meta.get("annotations") or {}).get("status", "{}")
    try:
        status = json.loads(text)
    except ValueError:
        status = {}
    if not isinstance(status, dict):
        status = {}
    return Member(
        name=meta.get("name", "?"),
        role=rolegen_role(status.get("role")),
        state=status.get("replication_state") or status.get("state"),
        timeline=status.get("timeline"),
        lsn=_int(status.get("xlog_location")),
        label=(meta.get("labels") or {}).get("role"),
        replay_lsn=_int(status.get("replay_lsn")),
        container_running=_container_running(pod),
        status_text=text,
        restarts=_restarts(pod),
        uid=meta.get("uid"),
        storage=Storage.from_annotations(meta.get("annotations") or {}),
        control=Control.from_annotations(meta.get("annotations") or {}),
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
    leader_version: str | None = None  # resourceVersion of `<scope>-leader`: changes whenever Patroni renews
    records: Records = field(default_factory=lambda: Records())  # what rolegen itself recorded on this site

    @property
    def dcs_role(self) -> str | None:
        """The role the DCS config declares: standby_cluster set means standby-leader."""
        if self.config is None:
            return None
        return "standby-leader" if self.config.get("standby_cluster") else "leader"

    @property
    def ttl(self) -> float:
        for value in (self.leader_annotations.get("ttl"), (self.config or {}).get("ttl")):
            try:
                return float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
        return 30.0

    @property
    def writable_members(self) -> list[Member]:
        return [m for m in self.members if m.may_write]

    @property
    def timelines(self) -> list[int]:
        return sorted({m.timeline for m in self.members if m.timeline is not None})

    @property
    def paused(self) -> bool:
        """Patroni's maintenance mode (`patronictl pause` sets `pause: true` in the DCS config): Patroni then
        acts on no role change and fails nothing over until `patronictl resume`."""
        return bool((self.config or {}).get("pause"))

    @property
    def live_role(self) -> str | None:
        """The role the leading member reports (None: nobody leads): see leader_member."""
        member = self.leader_member
        return member.role if member else None

    @property
    def lock_holder(self) -> str | None:
        """The member `<scope>-leader` names. Its renewTime is never compared with this machine's clock (they
        may differ by minutes): whether the lock is still renewed takes two reads (`LockWatch`)."""
        return self.leader_annotations.get("leader") or None

    @property
    def leader_member(self) -> Member | None:
        """The lock holder, when its own Pod says it leads: it reports leader or standby-leader and its container
        is not stopped. A crashed leader's Pod is gone, its container stopped, or its restarted Patroni reports
        another role; a hung one keeps its last word (it may still run PostgreSQL as primary)."""
        holder = self.lock_holder
        return next((m for m in self.members if m.name == holder and m.role in ("leader", "standby-leader")
                     and m.container_running is not False), None)

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
            "paused": self.paused,
            "initialize": self.initialize,
            "optime": self.optime,
            "leader": self.leader_annotations.get("leader"),
            "members": [m.as_dict() for m in self.members],
            "records": self.records.as_dict(),
        }


@dataclass
class LockWatch:
    """Whether a site's leader lock is still renewed, from observed change over reads on the caller's monotonic
    clock (`now`): Patroni rewrites `<scope>-leader` (a new resourceVersion) on every loop of the holder."""

    version: str | None = None
    since: float | None = None

    def stale(self, state: SiteState, now: float) -> bool:
        """True once the lock object has not changed for longer than the site's ttl."""
        if self.since is None or state.leader_version != self.version:
            self.version, self.since = state.leader_version, now
            return False
        return now - self.since > state.ttl


def selector(spec: Spec) -> str:
    """The label selector of everything a site's state is read from: the DCS ConfigMaps, rolegen's records and
    the member Pods all carry Patroni's labels."""
    return ",".join([f"{k}={v}" for k, v in sorted(spec.labels.items())] + [f"cluster-name={spec.scope}"])


def read_site(spec: Spec, cluster: Cluster) -> SiteState:
    """One list of ConfigMaps and Pods by `selector`."""
    objects = cluster.list("configmaps,pods", selector(spec))
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
    own = maps.get(records_map(spec))
    return SiteState(
        environment=spec.environment,
        config=config,
        config_resource_version=(cm or {}).get("metadata", {}).get("resourceVersion"),
        config_annotations=annotations,
        leader_annotations=((leader or {}).get("metadata", {}).get("annotations")) or {},
        members=sorted((member_from_pod(p) for p in pods), key=lambda m: m.name),
        leader_version=(leader or {}).get("metadata", {}).get("resourceVersion"),
        records=Records.from_object(own),
    )


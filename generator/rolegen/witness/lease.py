"""The witness Lease (coordination.k8s.io/v1) in the third site's API server: read, renewed by the leading site's
guard, taken by the standby's. Every write carries the resourceVersion it was computed from, so a renewal and a
takeover can never both succeed against the same read: the loser gets Conflict and reads again.

What the guards decide from is the resourceVersion changing (rolegen.witness.rules: observed change on the
reader's own clock); `renewTime` is written for people reading `kubectl get lease`, never compared with a clock.
The leader publishes its position with each renewal (annotation `rolegen.io/lsn`): the standby's lag limit is
measured against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rolegen.cluster.kubectl import Cluster
from rolegen.errors import RolegenError

LSN = "rolegen.io/lsn"
SYNCHRONOUS = "rolegen.io/synchronous"  # replication sync: "true" while the peer confirmed every commit


class LeaseLost(RolegenError):
    """The Lease is held by another site: a renewal must not take it back."""


@dataclass(frozen=True)
class WitnessView:
    """One read of the Lease: `version` None when it does not exist. `renew_time`: spec.renewTime as written, for
    people (never compared with a clock, nor between views)."""

    holder: str | None
    version: str | None
    lsn: int | None = None
    transitions: int = 0
    renew_time: str | None = field(default=None, compare=False)
    synchronous: bool | None = None  # replication sync: what the leader's guard said (None: nothing)

    @classmethod
    def of(cls, obj: dict[str, Any] | None) -> WitnessView:
        if obj is None:
            return cls(None, None)
        spec = obj.get("spec") or {}
        annotations = obj.get("metadata", {}).get("annotations") or {}
        lsn, said = annotations.get(LSN), annotations.get(SYNCHRONOUS)
        return cls(spec.get("holderIdentity"), obj["metadata"].get("resourceVersion"),
                   int(lsn) if isinstance(lsn, str) and lsn.isdigit() else None,
                   int(spec.get("leaseTransitions") or 0), spec.get("renewTime"),
                   {"true": True, "false": False}.get(said) if isinstance(said, str) else None)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # MicroTime, as the API expects


class WitnessLease:
    """The Lease `name` in `cluster`'s namespace; `duration`: fence_after, written for people (leaseDurationSeconds)."""

    def __init__(self, cluster: Cluster, name: str, duration: int) -> None:
        self.cluster, self.name, self.duration = cluster, name, duration

    def read(self) -> WitnessView:
        return WitnessView.of(self.cluster.get("lease", self.name))

    def create(self, holder: str) -> None:
        """The first holder: the site that leads when automatic mode is switched on (AlreadyExists otherwise)."""
        self.cluster.create({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.cluster.namespace},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": self.duration, "acquireTime": _now(),
                     "renewTime": _now(), "leaseTransitions": 0},
        })

    def renew(self, holder: str, seen: WitnessView, lsn: int | None) -> WitnessView:
        """`holder` keeps the Lease it held at `seen`, publishing `lsn`. Refused (LeaseLost) when `seen` shows
        another holder; Conflict when the Lease changed since `seen` (read again, never overwrite)."""
        if seen.holder != holder or seen.version is None:
            raise LeaseLost(f"the witness lease {self.name} is held by {seen.holder or 'nobody'}, not {holder}",
                            hint="a site that lost the witness lease may lead again only through a role change")
        now = _now()
        patch: dict[str, Any] = {"spec": {"renewTime": now, "leaseDurationSeconds": self.duration}}
        if lsn is not None:
            patch["metadata"] = {"annotations": {LSN: str(lsn)}}
        version = self.cluster.merge_patch("lease", self.name, patch, resource_version=seen.version)
        return WitnessView(holder, version, lsn if lsn is not None else seen.lsn, seen.transitions, now,
                           seen.synchronous)

    def take(self, holder: str, seen: WitnessView) -> WitnessView:
        """`holder` takes the Lease unchanged since `seen` (Conflict if it changed: its holder renewed)."""
        if seen.version is None:
            raise LeaseLost(f"the witness lease {self.name} does not exist", hint="rolegen status")
        now = _now()
        patch = {"spec": {"holderIdentity": holder, "acquireTime": now, "renewTime": now,
                          "leaseTransitions": seen.transitions + 1}}
        version = self.cluster.merge_patch("lease", self.name, patch, resource_version=seen.version)
        return WitnessView(holder, version, seen.lsn, seen.transitions + 1, now, seen.synchronous)

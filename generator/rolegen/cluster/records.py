"""What rolegen itself records on each site, kept where the cluster keeps its own state (not on the operator's
disk), so a rolegen that was killed — or another operator's rolegen — reads the same evidence.

One ConfigMap per site, `<scope>-rolegen`, carrying Patroni's selector labels (so the single read of a site
returns it with Patroni's own objects; Patroni ignores names it does not know), with three annotations:

- `rolegen.io/lease`: who is changing roles right now (see rolegen.cluster.lease);
- `rolegen.io/fence`: written when this site was demoted/fenced and rolegen had *observed* that no member
  could still write: each member's timeline and LSN at that moment. A member that later shows a timeline it
  could only have reached by promoting on its own is diverged (see procedures/divergence.py);
- `rolegen.io/promotion`: written on a site rolegen promoted, *before* the promotion: the timeline it left and
  whether its peer was fenced first (then nothing the peer holds can collide with the new timeline).

Writes carry the resourceVersion that was read (the API server refuses a stale one): two rolegen runs never
overwrite each other's records blindly.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from rolegen.cluster.kubectl import AlreadyExists, Cluster
from rolegen.offline.spec import Spec

LEASE, FENCE, PROMOTION = "rolegen.io/lease", "rolegen.io/fence", "rolegen.io/promotion"


def records_map(spec: Spec) -> str:
    return f"{spec.scope}-rolegen"


def _load(annotations: dict[str, str], key: str) -> dict[str, Any] | None:
    try:
        value = json.loads(annotations.get(key) or "null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Records:
    """The parsed annotations of `<scope>-rolegen`; `resource_version` None when the ConfigMap is missing."""

    resource_version: str | None = None
    lease: dict[str, Any] | None = None
    fence: dict[str, Any] | None = None
    promotion: dict[str, Any] | None = None

    @classmethod
    def from_object(cls, obj: dict[str, Any] | None) -> Records:
        if obj is None:
            return cls()
        meta = obj.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        return cls(meta.get("resourceVersion"), _load(annotations, LEASE), _load(annotations, FENCE),
                   _load(annotations, PROMOTION))

    def as_dict(self) -> dict[str, Any]:
        return {"lease": self.lease, "fence": self.fence, "promotion": self.promotion}


@dataclass
class RecordStore:
    """Reads and writes one site's `<scope>-rolegen` ConfigMap."""

    spec: Spec
    cluster: Cluster
    labels: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.labels = {**self.spec.labels, "cluster-name": self.spec.scope, "app.kubernetes.io/managed-by": "rolegen"}

    def read(self) -> Records:
        return Records.from_object(self.cluster.get("configmap", records_map(self.spec)))

    def ensure(self) -> Records:
        """The records, creating the empty ConfigMap first if it does not exist."""
        current = self.read()
        if current.resource_version is not None:
            return current
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": records_map(self.spec), "labels": self.labels}}
        with contextlib.suppress(AlreadyExists):  # another run created it meanwhile: fine
            self.cluster.create(body)
        return self.read()

    def write(self, values: dict[str, dict[str, Any] | list[Any] | None], resource_version: str) -> None:
        """Set (or, with None, remove) annotations; 409 (Conflict) if the ConfigMap changed since it was read.
        (`rolegen.io/history`, a list: rolegen.cluster.history.)"""
        annotations = {k: None if v is None else json.dumps(v, sort_keys=True, separators=(",", ":"))
                       for k, v in values.items()}
        self.cluster.merge_patch("configmap", records_map(self.spec), {"metadata": {"annotations": annotations}},
                                 resource_version=resource_version)

"""The role-change history: every switchover, failover, failback and re-seed appends one record to the
`rolegen.io/history` annotation of rolegen's own ConfigMap (`<scope>-rolegen`, rolegen.cluster.records) on each
site it reaches, as a JSON list of the last `KEEP` records. The clusters keep it, not the operator's laptop.

An append reads the ConfigMap and writes it back with the resourceVersion it read (a conflict reads again), so
two runs never drop each other's records; it touches no other annotation (lease, fence and promotion stay as
they are). `merge` joins what both sites hold: the same change seen on both is one record, naming both sites.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rolegen.cluster.kubectl import ClusterError, Conflict
from rolegen.cluster.records import RecordStore, records_map

HISTORY = "rolegen.io/history"
KEEP = 50


def entries_of(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The history held by a `<scope>-rolegen` object (none when absent or unreadable as JSON)."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    try:
        value = json.loads(annotations.get(HISTORY) or "[]")
    except ValueError:
        return []
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def read(store: RecordStore) -> list[dict[str, Any]]:
    return entries_of(store.cluster.get("configmap", records_map(store.spec)))


def append(store: RecordStore, entry: dict[str, Any], keep: int = KEEP, attempts: int = 5) -> None:
    """Append `entry`, keeping the last `keep`: written at the resourceVersion read, read again on a conflict."""
    for attempt in range(attempts):
        obj = store.cluster.get("configmap", records_map(store.spec))
        if obj is None:
            store.ensure()
            obj = store.cluster.get("configmap", records_map(store.spec))
        version = ((obj or {}).get("metadata") or {}).get("resourceVersion")
        if not isinstance(version, str):
            raise ClusterError(f"{records_map(store.spec)} on {store.spec.environment} could not be created")
        kept = [*entries_of(obj), entry][-keep:]
        try:
            store.write({HISTORY: kept}, version)
            return
        except Conflict:
            if attempt == attempts - 1:
                raise


def key(entry: dict[str, Any]) -> tuple[str, str, str]:
    """One role change, whichever site holds it: its start, verb and target."""
    return (str(entry.get("started") or ""), str(entry.get("verb") or ""), str(entry.get("to") or ""))


@dataclass(frozen=True)
class SiteHistory:
    """What one site holds; `error` when it could not be read (never the same as an empty history)."""

    environment: str
    entries: tuple[dict[str, Any], ...] = ()
    error: str | None = None


def merge(sites: list[SiteHistory]) -> list[dict[str, Any]]:
    """Every record once, oldest first, with the sites that hold it (`sites`, sorted). Where two sites hold the
    same change with different fields (one site's write failed at the end), the fuller record wins."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    held: dict[tuple[str, str, str], set[str]] = {}
    for site in sorted(sites, key=lambda s: s.environment):
        for entry in site.entries:
            k = key(entry)
            held.setdefault(k, set()).add(site.environment)
            if k not in found or len(entry) > len(found[k]):
                found[k] = entry
    return [{**found[k], "sites": sorted(held[k])} for k in sorted(found)]

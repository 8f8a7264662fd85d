"""Site snapshots for the pure rules' tests (rolegen.procedures.rules, divergence): members and sites as
Patroni's objects would report them, without a cluster."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rolegen.cluster.records import Records
from rolegen.cluster.site_state import Member, SiteState

STANDBY = {"standby_cluster": {"host": "peer", "port": 5432}, "ttl": 30}
LEADER = {"ttl": 30}


def member(name: str, role: str | None, timeline: int | None = 3, lsn: int | None = 100, *,
           running: bool | None = True, state: str = "running", replay: int | None = None, text: str = "") -> Member:
    return Member(name, role, state, timeline, lsn, None, replay, running, text or f"{name}:{role}:{timeline}:{lsn}")


def site(env: str, members: list[Member], *, config: dict[str, Any] | None = None, holder: str | None = None,
         version: str = "1", optime: int | None = None, history: list[list[Any]] | None = None,
         records: Records | None = None, renewed: datetime | None = None) -> SiteState:
    lock: dict[str, str] = {}
    if holder:
        lock = {"leader": holder, "renewTime": (renewed or datetime.now(UTC)).isoformat(), "ttl": "30"}
    if optime is not None:
        lock["optime"] = str(optime)
    annotations = {"initialize": "7"}
    if history is not None:
        annotations["history"] = json.dumps(history)
    return SiteState(env, config if config is not None else STANDBY, "5", annotations, lock, members,
                     leader_version=version, records=records or Records())

"""Cross-site synchronous commit (`witness.replication: sync` with mode automatic; docs/witness.md).

Each site's PostgreSQL names its peer's members in `synchronous_standby_names` (ANY 1 of them): on the leader the
peer's standby leader, the one member that streams across the tunnel, confirms every commit before it is
acknowledged; on a standby the setting does nothing until the site is promoted. The leader's guard drops it only
after publishing in the witness Lease that it runs unsynchronized (chart/files/witness_sync.py), and the standby's
guard fails over by itself only on a Lease that says synchronous: so 0 acknowledged commits are lost.

PostgreSQL matches standbys by application_name, which Patroni sets to the member name, the Pod's name
(`<release>-<ordinal>`): two sites with the same release name would let the leader's own replica `patroni-1`
stand for the peer's and confirm commits the other site lacks. Hence the pair rule: distinct member names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rolegen.errors import Problem
from rolegen.offline.spec import Spec

CHART_REPLICAS = 2  # chart/values.yaml replicaCount: a spec without members.replicas runs this many
FULLNAME_MAX = 45  # rolegen-patroni.fullname's truncation


def member_names(spec: Spec) -> tuple[str, ...]:
    """The Pod (so Patroni member, so application_name) names of `spec`'s StatefulSet."""
    fullname = spec.release[:FULLNAME_MAX].rstrip("-")
    return tuple(f"{fullname}-{i}" for i in range(int(spec.members.get("replicas", CHART_REPLICAS))))


def synchronous(spec: Spec) -> bool:
    return spec.witness is not None and spec.witness.automatic and spec.witness.replication == "sync"


def attach(specs: Mapping[str, Spec]) -> dict[str, Spec]:
    """Each synchronous spec with its peer's member names (a peer missing is another rule's error)."""
    out = dict(specs)
    for name, spec in specs.items():
        peer = specs.get(spec.peer.environment)
        if synchronous(spec) and peer is not None:
            out[name] = replace(spec, sync_standbys=member_names(peer))
    return out


def standby_names(names: tuple[str, ...]) -> str:
    """`ANY 1 ("a", "b")`: any one of the peer's members confirms (only its standby leader streams from here)."""
    return "ANY 1 (" + ", ".join(f'"{n}"' for n in names) + ")"


def with_sync(spec: Spec, dynamic: dict[str, Any]) -> dict[str, Any]:
    """patroni.dynamic with the peer's members as synchronous standbys (synchronous_commit on: remote flush)."""
    if not spec.sync_standbys:
        return dynamic
    parameters = dynamic.setdefault("postgresql", {}).setdefault("parameters", {})
    parameters["synchronous_standby_names"] = standby_names(spec.sync_standbys)
    parameters["synchronous_commit"] = "on"
    return dynamic


def pair_problems(a: Spec, b: Spec) -> list[Problem]:
    """Synchronous sites must not share a member name (see the module's docstring)."""
    if not (synchronous(a) and synchronous(b)):
        return []
    shared = sorted(set(member_names(a)) & set(member_names(b)))
    if not shared:
        return []
    message = (f"replication sync needs distinct member names on the two sites, and {a.environment} and "
               f"{b.environment} both run {', '.join(shared)}: PostgreSQL matches a synchronous standby by that "
               "name, so the leader's own replica would confirm commits the other site lacks; give the sites "
               "different helm.release names")
    return [Problem(s.source, "$.helm.release", message) for s in (a, b)]


def spec_problems(spec: Spec) -> list[Problem]:
    """Parameters the rendering owns with sync (a spec's own would be overwritten: say so)."""
    if not synchronous(spec):
        return []
    parameters = (spec.dynamic.get("postgresql") or {}).get("parameters") or {}
    return [Problem(spec.source, f"$.patroni.dynamic.postgresql.parameters.{key}", (
        "set by rolegen with witness replication sync (the peer's members, confirming each commit): remove it"))
        for key in ("synchronous_standby_names", "synchronous_commit") if key in parameters]

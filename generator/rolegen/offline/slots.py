"""The DR link's replication slot (`patroni.dr_slot`): its names, what it adds to the rendered config, and the rules
that keep it bounded. Pure functions of specs; the live view is rolegen.cluster.slot_status.

Design (README "DR link"): both sites' dynamic config carry the same permanent physical slot with
`cluster_type: primary`, so Patroni keeps it only while the site is a primary cluster — on every member of it
(permanent slots live on replicas too since Patroni 3.2, so it survives a failover inside the site) — and drops it
the moment the site becomes a standby cluster (no orphan retaining WAL there). The standby's `standby_cluster`
names it in `primary_slot_name`. A role flip therefore changes only `standby_cluster`, as before.

Names: the slot a site keeps is named after the site it serves (its peer: `golddr` on gold, `gold` on golddr), so
`pg_replication_slots` on the leader says who it is for; `dr_slot.name` overrides it with one name for both ways.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rolegen.errors import Problem
from rolegen.offline.spec import Spec

DEFAULT_BOUND = "1GB"  # max_slot_wal_keep_size when dr_slot does not say (README "DR link": why)
_UNITS = {"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_SIZE = re.compile(r"^\s*(-?\d+)\s*(B|kB|MB|GB|TB)?\s*$")
MEMBER_ORDINALS = range(9)  # members.replicas is at most 9


def parse_size(value: Any, unit: str = "MB") -> int | None:
    """Bytes of a PostgreSQL size setting (`1GB`, `512MB`, or a bare number in `unit`); None if unreadable,
    -1 for `-1` (unlimited)."""
    match = _SIZE.match(str(value)) if isinstance(value, int | str) and not isinstance(value, bool) else None
    if match is None:
        return None
    number = int(match.group(1))
    return -1 if number < 0 else number * _UNITS[match.group(2) or unit]


def slot_name(environment: str) -> str:
    """A slot name from an environment name: Patroni allows [a-z0-9_] only."""
    return environment.replace("-", "_")


def enabled(spec: Spec) -> bool:
    return bool(spec.dr_slot and spec.dr_slot.get("enabled"))


def hosted_slot(spec: Spec) -> str | None:
    """The slot `spec`'s site keeps while it leads (for its peer), or None without dr_slot."""
    if not enabled(spec):
        return None
    return str(spec.dr_slot.get("name") or slot_name(spec.peer.environment))


def consumed_slot(spec: Spec) -> str | None:
    """The slot `spec`'s site streams through while it is the standby: the one its peer keeps for it."""
    if not enabled(spec):
        return None
    return str(spec.dr_slot.get("name") or slot_name(spec.environment))


def released_slot(spec: Spec) -> str | None:
    """The hosted slot, when its WAL from before the divergence goes after a promotion (the chart's dr_slot.py)."""
    name = hosted_slot(spec)
    return name if name is not None and spec.dr_slot.get("release_before_divergence", True) else None


def bound(spec: Spec) -> str:
    return str(spec.dr_slot.get("max_slot_wal_keep_size", DEFAULT_BOUND))


def with_slot(spec: Spec, dynamic: dict[str, Any]) -> dict[str, Any]:
    """`dynamic` (a copy of the spec's) with the permanent slot and its bound added, when dr_slot is on."""
    name = hosted_slot(spec)
    if name is None:
        return dynamic
    slots = dict(dynamic.get("slots") or {})
    slots[name] = {"type": "physical", "cluster_type": "primary"}
    postgresql = dict(dynamic.get("postgresql") or {})
    postgresql["parameters"] = {**(postgresql.get("parameters") or {}), "max_slot_wal_keep_size": bound(spec)}
    return {**dynamic, "slots": slots, "postgresql": postgresql}


def standby_extras(spec: Spec, standby: dict[str, Any]) -> dict[str, Any]:
    """`standby` (a copy of patroni.standby) with `primary_slot_name` added, when dr_slot is on."""
    name = consumed_slot(spec)
    return standby if name is None else {**standby, "primary_slot_name": name}


def member_slot_names(release: str) -> set[str]:
    """Slots Patroni names after members (`<release>-N` -> `<release>_N`): a permanent slot must not take one."""
    return {f"{slot_name(release)}_{n}" for n in MEMBER_ORDINALS}


def spec_problems(spec: Spec) -> list[Problem]:
    """Rules of one spec: a dr_slot Patroni will honour and that is bounded; hand-made slots bounded too."""
    src = spec.source
    postgresql = spec.dynamic.get("postgresql") or {}
    params = postgresql.get("parameters") or {}
    manual = _manual_slots(spec)
    problems: list[Problem] = []
    if not enabled(spec):
        limit = parse_size(params.get("max_slot_wal_keep_size", -1))
        if manual and (limit is None or limit < 0):
            problems.append(Problem(
                src, "$.patroni.dynamic.postgresql.parameters.max_slot_wal_keep_size",
                f"replication slots are on ({', '.join(manual)}) but max_slot_wal_keep_size is unbounded: a standby "
                "that never returns fills the leader's disk; set a size (or use patroni.dr_slot, which sets "
                f"{DEFAULT_BOUND} by default)",
            ))
        return problems
    if postgresql.get("use_slots") is False:
        problems.append(Problem(src, "$.patroni.dynamic.postgresql.use_slots",
                                "patroni.dr_slot needs use_slots: Patroni creates permanent slots only with it"))
    if "max_slot_wal_keep_size" in params:
        problems.append(Problem(src, "$.patroni.dynamic.postgresql.parameters.max_slot_wal_keep_size",
                                "set by patroni.dr_slot.max_slot_wal_keep_size while dr_slot is on; remove it here"))
    if "primary_slot_name" in spec.standby:
        problems.append(Problem(src, "$.patroni.standby.primary_slot_name",
                                "patroni.dr_slot names the standby's slot; remove it here (or set dr_slot.name)"))
    hosted = hosted_slot(spec)
    if hosted in (spec.dynamic.get("slots") or {}):
        problems.append(Problem(src, f"$.patroni.dynamic.slots.{hosted}",
                                f"slot {hosted!r} is the DR link's (patroni.dr_slot); remove it here"))
    taken = sorted({n for n in (hosted, consumed_slot(spec)) if n} & member_slot_names(spec.release))
    if taken:
        where = "$.patroni.dr_slot.name" if spec.dr_slot.get("name") else "$.patroni.dr_slot"
        problems.append(Problem(src, where, f"slot name {taken[0]!r} is how Patroni names a member's slot "
                                f"({spec.release}-N); set dr_slot.name to another name"))
    limit, keep = parse_size(bound(spec)), parse_size(params.get("wal_keep_size", 0))
    if limit is not None and keep is not None and limit <= keep:
        problems.append(Problem(
            src, "$.patroni.dr_slot.max_slot_wal_keep_size",
            f"{bound(spec)} is not more than wal_keep_size ({params.get('wal_keep_size')}): the slot would keep "
            "nothing wal_keep_size does not already keep; raise it",
        ))
    return problems


def _manual_slots(spec: Spec) -> list[str]:
    """Physical slots the spec declares by hand: permanent ones in dynamic.slots, and a standby's slot."""
    found = [f"slots.{n}" for n, v in sorted((spec.dynamic.get("slots") or {}).items())
             if not isinstance(v, Mapping) or v.get("type", "physical") == "physical"]
    if "primary_slot_name" in spec.standby:
        found.append("standby.primary_slot_name")
    return found


PER_SITE = ("release_before_divergence",)  # what each site's own promotions do: it may differ within the pair


def pair_problems(a: Spec, b: Spec) -> list[Problem]:
    """The slot is declared once per pair: both specs carry the same dr_slot (either may lead)."""
    shared = [{k: v for k, v in s.dr_slot.items() if k not in PER_SITE} or None for s in (a, b)]
    if shared[0] == shared[1]:
        return []
    return [
        Problem(s.source, "$.patroni.dr_slot", f"dr_slot differs between {a.environment} and {b.environment}; the "
                "DR link's slot is declared once per pair: give both specs the same patroni.dr_slot")
        for s in (a, b)
    ]


def fold_dr_slot(data: dict[str, Any], released: str | None = None) -> None:
    """Turn the rendered form of a DR slot back into `patroni.dr_slot` (rolegen import of a site rolegen rendered):
    the permanent slot for the peer, its bound, and the standby's `primary_slot_name` naming the slot for this site
    (both derived names, or one name both ways). `released`: the live values' `patroni.drSlot` (the chart's hooks
    release the slot's WAL after a promotion); a site installed without it says release_before_divergence: false."""
    patroni, env, peer = data["patroni"], data["environment"], data["peer"]["environment"]
    dynamic, standby = patroni.get("dynamic") or {}, patroni.get("standby") or {}
    params = (dynamic.get("postgresql") or {}).get("parameters") or {}
    rendered = {"type": "physical", "cluster_type": "primary"}
    permanent = {n for n, v in (dynamic.get("slots") or {}).items() if v == rendered}
    consumed = standby.get("primary_slot_name")
    if "max_slot_wal_keep_size" not in params or consumed is None:
        return
    if consumed == slot_name(env) and slot_name(peer) in permanent:
        hosted, name = slot_name(peer), None
    elif consumed in permanent:
        hosted, name = consumed, consumed
    else:
        return
    del dynamic["slots"][hosted]
    if not dynamic["slots"]:
        del dynamic["slots"]
    del standby["primary_slot_name"]
    patroni["dr_slot"] = {"enabled": True, **({"name": name} if name else {}),
                          "max_slot_wal_keep_size": params.pop("max_slot_wal_keep_size"),
                          **({} if released == hosted else {"release_before_divergence": False})}

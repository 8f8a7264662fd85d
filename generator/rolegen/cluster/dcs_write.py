"""The one guarded write of a site's DCS `config` annotation, used by `apply` and by every procedure.

What it writes: the declared config plus the keys only the live config has (set by hand: `pause`,
`failsafe_mode`, `synchronous_mode`, parameters ...), unless asked to drop them (`apply --prune`).
How: a merge patch carrying the resourceVersion the target was computed from. Patroni writes other annotations
of the same object (`history`, `initialize`), so a 409 is expected now and then: the object is read again and
the target recomputed from that read, never written blindly over what someone else just wrote.
A write that must not change the role (apply) refuses when a re-read shows the live role moved.
The nudge of a site's Patroni (procedures/wake.py) rewrites the same annotation's text through `rewrite_text`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from rolegen.cluster.kubectl import AlreadyExists, Cluster, Conflict
from rolegen.errors import RolegenError
from rolegen.offline.render import dumps_json
from rolegen.offline.spec import Spec

Config = dict[str, Any]
# A read of the ConfigMap: its `config` annotation (None: none) and the object's resourceVersion (None: no object).
Snapshot = tuple[Config | None, str | None]

# Keys of the `config` annotation that the role decides: their absence is drift, never "extra, kept".
ROLE_OWNED = ("standby_cluster",)
ATTEMPTS = 3


def keep_extra(live: Config, declared: Config) -> Config:
    """`declared`, plus keys only the live config has (set by hand) — except role-owned ones."""
    merged = copy.deepcopy(declared)
    for key, value in live.items():
        if key in ROLE_OWNED and key not in declared:
            continue
        if key not in merged:
            merged[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = keep_extra(value, merged[key])
    return merged


def declared_role(config: Config | None) -> str | None:
    """The role a `config` annotation declares (None: no annotation): standby_cluster set means standby-leader."""
    if config is None:
        return None
    return "standby-leader" if config.get("standby_cluster") else "leader"


def target_config(live: Config | None, declared: Config, *, keep_hand_set: bool = True) -> Config:
    return keep_extra(live, declared) if keep_hand_set and live is not None else copy.deepcopy(declared)


def _nothing() -> None:
    return None


def _quiet(_: str) -> None:
    return None


def config_map_object(spec: Spec, text: str) -> dict[str, Any]:
    """`<scope>-config` as the chart renders it (Patroni's selector labels, the `config` annotation): what a
    re-seed creates when the ConfigMap is missing."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": spec.config_map,
            "namespace": spec.namespace,
            "labels": {**spec.labels, "cluster-name": spec.scope},
            "annotations": {"config": text},
        },
    }


def _patch(cluster: Cluster, config_map: str, text: str, version: str, clear: tuple[str, ...] = ()) -> str | None:
    """The one write of the `config` annotation: a merge patch against `version` (`clear`: annotations removed in
    the same write). Returns the new resourceVersion."""
    annotations: dict[str, str | None] = {"config": text, **dict.fromkeys(clear)}
    return cluster.merge_patch("configmap", config_map, {"metadata": {"annotations": annotations}},
                               resource_version=version)


def rewrite_text(cluster: Cluster, config_map: str, text: str, version: str) -> str | None:
    """Write `text` (the same configuration, another text: a nudge) against `version`; ClusterError on a
    conflict, never retried (the caller waits for a fresh read)."""
    return _patch(cluster, config_map, text, version)


def write_config(
    cluster: Cluster,
    config_map: str,
    declared: Config,
    seen: Snapshot,
    reread: Callable[[], Snapshot],
    *,
    keep_hand_set: bool = True,
    adjust: Callable[[Config], None] | None = None,
    role_change: bool = True,
    guard: Callable[[], None] = _nothing,
    log: Callable[[str], None] = _quiet,
    clear: tuple[str, ...] = (),
    create: Callable[[str], dict[str, Any]] | None = None,
    attempts: int = ATTEMPTS,
) -> bool:
    """Make `config_map`'s `config` annotation hold `declared` (plus hand-set keys); `seen` is the read the first
    attempt is computed from, `reread` gives a fresh one after a conflict. `adjust` edits the target in place
    (a standby without its DR slot). `role_change=False`: refuse, never write, if the live role differs from the
    declared one (on the first read or any re-read). `guard` runs before every write (the lease check).
    `clear`: annotations removed in the same write (Patroni's `history`/`initialize` after a wipe; the write
    then happens even when the config is unchanged). `create(text)`: the ConfigMap to create when it is missing
    (otherwise a missing ConfigMap raises RolegenError). Returns False when the annotation already holds the target
    (nothing written). A conflict on every attempt raises Conflict (AlreadyExists when creating)."""
    want = declared_role(declared)
    for attempt in range(attempts):
        live, version = seen
        if not role_change and live is not None and declared_role(live) != want:
            raise RolegenError(
                f"{config_map}: the live DCS config declares {declared_role(live)}, the write would make it {want}; "
                "nothing was written (a role changes only through the role verbs)",
                hint="rolegen status, then rolegen switchover/failover --to the site that should lead",
            )
        target = target_config(live, declared, keep_hand_set=keep_hand_set)
        if adjust is not None:
            adjust(target)
        if live == target and not clear:
            return False
        if version is None and create is None:
            raise RolegenError(
                f"ConfigMap {config_map} does not exist on context {cluster.name}",
                hint="the chart creates it: check the Helm release (rolegen diff)",
            )
        guard()
        try:
            if version is None:
                assert create is not None
                cluster.create(create(dumps_json(target)))
            else:
                _patch(cluster, config_map, dumps_json(target), version, clear)
            return True
        except (Conflict, AlreadyExists):
            if attempt == attempts - 1:
                raise
            log(f"   {config_map} changed meanwhile: re-read, recomputed")
            seen = reread()
    raise AssertionError("unreachable")

"""When a site may be wiped, as pure functions over site snapshots (no IO, no clock reads), like rules.py.

A re-seed deletes a site's volumes: afterwards the other site holds the only copy of the data. So the wipe needs
proof, read right before it, that the other site is a healthy leader (`source_blockers`), and the wiped site may
start its members only once its DCS config makes them standbys of that leader (`standby_config_blockers`): a
wiped site without it would bootstrap a new, empty primary.
"""

from __future__ import annotations

from typing import Any

from rolegen.cluster.site_state import SiteState
from rolegen.procedures.rules import holder


def leader_blockers(state: SiteState, system_id: str | None) -> list[str]:
    """Why one read of the source does not show a healthy leader with the data recorded at preflight (empty: it
    does). The lock holder is taken by name, whatever the lock's age: its age is judged by observed renewal
    (`source_blockers`), never against this machine's clock."""
    env, blockers = state.environment, []
    if state.dcs_role != "leader":
        declared = state.dcs_role or "nothing (no config annotation)"
        blockers.append(f"{env}'s DCS config declares {declared}, not leader")
    lock = holder(state)
    if lock is None:
        name = state.leader_annotations.get("leader")
        blockers.append(f"{env}'s leader lock names {name}, which has no Pod" if name else f"nobody holds {env}'s "
                        "leader lock")
    elif lock.role != "leader":
        blockers.append(f"{lock.name} holds {env}'s leader lock but reports {lock.role or 'nothing'}, not leader")
    elif lock.container_running is not True:
        running = "stopped" if lock.container_running is False else "not reported"
        blockers.append(f"{lock.name} leads {env} but its container is {running}")
    if system_id is None:
        blockers.append(f"{env}'s system id was not known at preflight")
    elif state.initialize != system_id:
        blockers.append(f"{env}'s system id is {state.initialize or 'missing'}, not {system_id} as read at preflight")
    return blockers


def source_blockers(baseline: SiteState, now: SiteState, system_id: str | None) -> list[str]:
    """Why the source, as read `now`, is not proven a live, healthy leader (empty: proven). Alive means its
    leader object changed since `baseline` (Patroni renews the lock once per HA loop) while rolegen watched:
    a report alone may be the last word of a site that died since."""
    blockers = leader_blockers(now, system_id)
    if now.leader_version is None or now.leader_version == baseline.leader_version:
        blockers.append(f"{now.environment}'s leader lock was not seen renewed while watched")
    return blockers


def standby_config_blockers(state: SiteState, host: str, port: int) -> list[str]:
    """Why the members of a wiped site must not start yet (empty: they may): `<scope>-config` must exist and
    make them standbys of `host:port`."""
    env = state.environment
    if state.config_resource_version is None:
        return [f"{env} has no DCS config object"]
    if state.config is None:
        return [f"{env}'s DCS config object has no readable `config` annotation"]
    standby: Any = state.config.get("standby_cluster")
    if not isinstance(standby, dict) or not (standby.get("host") or standby.get("port")):
        return [f"{env}'s DCS config does not declare standby_cluster"]
    if standby.get("host") != host or str(standby.get("port")) != str(port):
        return [f"{env}'s standby_cluster points at {standby.get('host')}:{standby.get('port')}, not its peer "
                f"{host}:{port}"]
    return []

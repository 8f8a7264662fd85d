"""The DR slot as it stands, from what Patroni publishes (no exec, like every rolegen read): the leading site's
`<scope>-leader` carries `optime` (its current WAL position) and `slots` (each permanent slot's restart_lsn), and
the standby site's member Pods report their own position, timeline and whether they stream.

Retained WAL = optime - restart_lsn. PostgreSQL's `wal_status` is not published (Patroni reads it only to drop a
slot that became `lost`), so rolegen derives it the way PostgreSQL defines it: `reserved` (within max_wal_size),
`extended` (beyond it, within the bound), `unreserved` (beyond max_slot_wal_keep_size and wal_keep_size: removed
at the next checkpoint). `lost` cannot be read from the slot at all: Patroni drops a lost slot within a loop and
creates it again at the current position, so the slot then looks healthy while the standby needs WAL that is
gone. That is what rolegen detects: the standby, on the leader's timeline and not streaming, is behind the slot's
restart_lsn by more than a WAL segment. The only repair is a re-seed of the standby site.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rolegen.cluster.site_state import SiteState
from rolegen.offline import slots
from rolegen.offline.spec import Spec

SEGMENT = 16 << 20  # one WAL segment: the margin below which "behind the slot" is not evidence of loss


@dataclass(frozen=True)
class SlotStatus:
    name: str
    leader: str  # the site keeping the slot
    standby: str  # the site it serves
    bound: str  # max_slot_wal_keep_size
    wal_status: str  # reserved | extended | unreserved | lost | missing (not published by the leader)
    restart_lsn: int | None = None
    retained: int | None = None  # bytes of WAL the slot holds on the leader
    standby_streaming: bool | None = None  # None: the standby site was not read or has no leading member

    @property
    def next_command(self) -> str | None:
        return f"rolegen reseed --env {self.standby}" if self.wal_status == "lost" else None

    @property
    def problem(self) -> str | None:
        if self.wal_status != "lost":
            return None
        return (f"{self.standby} needs WAL that {self.leader} no longer holds (slot {self.name} lost: the standby "
                f"lagged beyond max_slot_wal_keep_size {self.bound})")

    def line(self) -> str:
        """The leading site's view: `slot golddr (for golddr): retains 1.2 MiB of WAL, wal_status reserved ...`."""
        if self.wal_status == "missing":
            return (f"slot {self.name} (for {self.standby}): not published by {self.leader} yet (Patroni creates it "
                    "within a loop of a promotion; if it stays missing, check use_slots and Patroni's log)")
        retained = "-" if self.retained is None else mib(self.retained)
        stream = {True: "streaming", False: "NOT streaming", None: "standby not read"}[self.standby_streaming]
        return (f"slot {self.name} (for {self.standby}): retains {retained} of WAL, wal_status {self.wal_status} "
                f"(bound {self.bound}); {self.standby} {stream}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "leader": self.leader,
            "standby": self.standby,
            "bound": self.bound,
            "wal_status": self.wal_status,
            "restart_lsn": self.restart_lsn,
            "retained_bytes": self.retained,
            "standby_streaming": self.standby_streaming,
            "error": self.problem,
            "next": self.next_command,
        }


def mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def published_slots(state: SiteState) -> dict[str, int | None]:
    """`slots` of the leader object: {name: restart_lsn}; a lost slot may be published as null for a loop."""
    try:
        data = json.loads(state.leader_annotations.get("slots") or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v if isinstance(v, int) else None for k, v in data.items()}


def slot_status(leader: Spec, lead: SiteState, standby: SiteState | None) -> SlotStatus | None:
    """The DR slot `leader`'s site keeps, when it leads and dr_slot is on; `standby`: the peer's state, if read."""
    name = slots.hosted_slot(leader)
    if name is None or lead.live_role != "leader":
        return None
    base: dict[str, Any] = {"name": name, "leader": leader.environment, "standby": leader.peer.environment,
                            "bound": slots.bound(leader)}
    peer = standby.leader_member if standby is not None else None
    streaming = None if peer is None else peer.state == "streaming"
    lsn = published_slots(lead).get(name)
    if lsn is None or lead.optime is None:
        return SlotStatus(**base, wal_status="missing", standby_streaming=streaming)
    retained = max(lead.optime - lsn, 0)
    own = lead.leader_member
    same_timeline = peer is not None and own is not None and peer.timeline == own.timeline
    if same_timeline and not streaming and peer is not None and peer.lsn is not None and peer.lsn + SEGMENT < lsn:
        status = "lost"
    else:
        status = derived_wal_status(leader, retained)
    return SlotStatus(**base, wal_status=status, restart_lsn=lsn, retained=retained, standby_streaming=streaming)


def derived_wal_status(spec: Spec, retained: int) -> str:
    """PostgreSQL's wal_status for a slot holding `retained` bytes, from the declared settings."""
    params = (spec.dynamic.get("postgresql") or {}).get("parameters") or {}
    max_wal = slots.parse_size(params.get("max_wal_size", "1GB")) or 1 << 30
    keep = max(slots.parse_size(slots.bound(spec)) or 0, slots.parse_size(params.get("wal_keep_size", 0)) or 0)
    if retained > keep:
        return "unreserved"
    return "extended" if retained > max_wal else "reserved"


def pair_slot_status(specs: dict[str, Spec], states: dict[str, SiteState | None]) -> dict[str, SlotStatus]:
    """The DR slot of each read site that leads, keyed by that site (its peer's state used when read)."""
    found = {}
    for env, state in sorted(states.items()):
        if state is None or env not in specs:
            continue
        status = slot_status(specs[env], state, states.get(specs[env].peer.environment))
        if status is not None:
            found[env] = status
    return found

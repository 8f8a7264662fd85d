"""The safety rules of every role change, as pure functions over site snapshots (no IO, no clock reads).

- `demotion_blockers`: which members of a fenced/demoted site may still accept writes. Decided by what Patroni
  reported and by *observed* change (annotation text, resourceVersion), never by comparing timestamps written
  on another machine with ours: a clock skewed by a minute must not make a live primary look dead.
- `final_position` / `gate_blocker`: the LSN gate — the target has replayed everything the old site may hold.
- whether a site's data can still follow the leader's: procedures/divergence.py.
- what an unplanned failover may do, given what it saw of both sites: procedures/failover_rules.py.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field

from rolegen.cluster.site_state import Member, SiteState
from rolegen.procedures.shutdown_proof import control_texts, shutdown_proof


@dataclass(frozen=True)
class FenceMarker:
    """What a site looked like right after rolegen wrote its fence (standby_cluster): the baseline against
    which later reads prove that Patroni acted on it."""

    leader_version: str | None
    statuses: dict[str, str]
    written_at: float  # monotonic seconds of this process
    controls: dict[str, str] = field(default_factory=dict)  # control_texts: the members' pg_control reports

    @classmethod
    def of(cls, state: SiteState, now: float) -> FenceMarker:
        return cls(state.leader_version, {m.name: m.status_text for m in state.members}, now, control_texts(state))


def shutdown_end(state: SiteState, before: dict[str, str]) -> tuple[Position | None, set[str]]:
    """The furthest shutdown checkpoint proven by the members of `state` (shutdown_proof), and who proved one."""
    proofs = {m.name: (lsn, m.control.timeline) for m in state.members
              if m.control is not None and (lsn := shutdown_proof(m, before)) is not None}
    if not proofs:
        return None, set()
    lsn, timeline = max(proofs.values())
    return Position(lsn, max(site_timeline(state) or 0, timeline)), set(proofs)


def holder(state: SiteState) -> Member | None:
    """The member named by the leader lock, whatever its age (None: no lock, or its Pod is gone)."""
    name = state.leader_annotations.get("leader")
    return next((m for m in state.members if m.name == name), None) if name else None


def demotion_blockers(state: SiteState, marker: FenceMarker, now: float) -> list[str]:
    """Why some member of a fenced site may still accept writes; empty when none can.

    A member blocks while its last report says it is (or is becoming) a writable primary and its container
    may be running: that covers a hung Patroni whose PostgreSQL still runs. The lock holder blocks until it
    reports standby-leader — a Patroni running as standby leader never promotes while standby_cluster is set —
    unless its Pod is gone, its container is stopped, or its lock has not been renewed for a whole ttl of
    *our* monotonic clock since the fence (then it is dead and nobody else may promote under the fence).
    """
    blockers: list[str] = []
    for member in state.writable_members:
        if shutdown_proof(member, marker.controls) is not None:
            continue  # its own report: shut down by its Patroni since the fence
        fresh = member.status_text != marker.statuses.get(member.name)
        why = "" if fresh else " and has not reported since the fence (Patroni hung, or the member is down?)"
        blockers.append(f"{member.name} last reported {member.role}{why}")
    lock = holder(state)
    if lock is None or lock.may_write or lock.container_running is False or lock.role == "standby-leader":
        return blockers
    if shutdown_proof(lock, marker.controls) is not None:
        return blockers
    stale = state.leader_version == marker.leader_version and now - marker.written_at > state.ttl
    if not stale:
        blockers.append(f"{lock.name} holds the leader lock and reports {lock.role or 'nothing'}, not standby-leader")
    return blockers


@dataclass(frozen=True)
class Position:
    lsn: int
    timeline: int | None


def final_position(state: SiteState) -> Position | None:
    """The furthest the site's data may reach: its leader lock's optime (Patroni >= 4.1 writes the shutdown
    checkpoint there on demotion) or any member's own report, whichever is larger; on the highest timeline
    a member reports. None when the site reported nothing."""
    lsns = [m.lsn for m in state.members if m.lsn is not None]
    if state.optime is not None:
        lsns.append(state.optime)
    if not lsns:
        return None
    return Position(max(lsns), site_timeline(state))


def site_timeline(state: SiteState) -> int | None:
    """The highest timeline the site is known to have reached. Members' reports alone can lag (a standby
    reports its last restartpoint's timeline while its walreceiver is idle), so the site's own `history`
    (written by its primary after each promotion: the last entry ended where the current timeline began) and
    rolegen's promotion record count too."""
    known = list(state.timelines)
    past = history(state)
    if past:
        known.append(max(past) + 1)
    recorded = (state.records.promotion or {}).get("timeline")
    if isinstance(recorded, int):
        known.append(recorded)
    return max(known) if known else None


@dataclass
class Settling:
    """The furthest position of a site whose members crashed is final only once it stopped moving.

    A member restarted after a crash replays its local WAL as a standby for a moment: until then it reports less
    than it holds, and a gate passed on that figure promotes the target before it has the last acknowledged
    commits. Each renewal of the leader lock is a loop of the holder's Patroni, which rewrites the lock's optime
    and its own status whenever they move: the position is settled once `loops` renewals passed without it
    growing — and only while every member of the site reports a position of its own. A member whose container
    is stopped is not "nothing can move": its Pod remains, the kubelet restarts it, and it comes back with WAL
    nobody has seen (acknowledged commits not yet shipped when it crashed). A member that reports no LSN is
    starting or recovering, and one that still reports a writable role speaks from before its crash."""

    loops: int = 2
    best: Position | None = None
    version: str | None = None
    renewals: int = 0

    def observe(self, state: SiteState) -> Position | None:
        position = final_position(state)
        if position is not None and (self.best is None or position.lsn > self.best.lsn):
            self.best, self.version, self.renewals = position, state.leader_version, 0
        elif state.leader_version != self.version:
            self.version, self.renewals = state.leader_version, self.renewals + 1
        return self.best

    def include(self, position: Position | None) -> None:
        """A position the site's data is known to reach, learnt otherwise than from its reports (shutdown_end)."""
        if position is not None and (self.best is None or position.lsn > self.best.lsn):
            self.best, self.renewals = position, 0

    def settled(self, state: SiteState) -> bool:
        return not self.unreported(state) and self.renewals >= self.loops

    @staticmethod
    def unreported(state: SiteState) -> list[str]:
        """Members whose data may reach further than anything reported: stopped (they restart), starting or
        recovering (no LSN yet), or still reporting a writable role (a report from before their crash)."""
        return [m.name for m in state.members if m.container_running is False or m.lsn is None or m.may_write]


def restarted(before: SiteState, after: SiteState) -> list[str]:
    """Members that may hold WAL nobody has reported since `before`: their container restarted (restartCount
    changed or unknown), their Pod was recreated (another uid: a force-deleted Pod comes back at restartCount 0),
    they appeared or disappeared, or they report nothing (no role: a new Pod Patroni has not written to yet)."""
    was = {m.name: m for m in before.members}
    out = {name for name in was} - {m.name for m in after.members}
    for m in after.members:
        old = was.get(m.name)
        if old is None or m.restarts is None or (old.restarts, old.uid) != (m.restarts, m.uid) or m.role is None:
            out.add(m.name)
    return sorted(out)


def settle_blocker(before: SiteState, after: SiteState, settling: Settling) -> str | None:
    """Why the switchover gate must still wait for the demoted site's position (None: nothing restarted since
    `before`, or its position settled). A member that is gone blocks until its Pod is back: its volume holds
    WAL that only it can report."""
    crashed = restarted(before, after)
    if not crashed:
        return None
    gone = sorted({m.name for m in before.members} - {m.name for m in after.members})
    if gone:
        return f"{', '.join(gone)} of {after.environment} gone: its Pod has not come back to report what it holds"
    if not settling.settled(after):
        return f"{', '.join(crashed)} restarted: {after.environment}'s position has not settled yet"
    return None


def gate_blocker(target: SiteState, final: Position) -> str | None:
    """None once the target's standby leader has replayed `final`; else why not.

    Timelines are not compared: reports lag both ways (a standby with an idle walreceiver reports its last
    restartpoint's timeline; the old site's members may not have reported the timeline they switched to just
    before the fence while the target, following them, already did). A standby cluster holds only what it
    received from the old site, so replaying up to the old site's furthest LSN is the proof; a target whose
    data left that history is caught before, by the divergence rule."""
    lead = holder(target)
    if lead is None or lead.role != "standby-leader":
        return f"{target.environment} has no standby leader"
    if lead.timeline is None or lead.replay_lsn is None:
        return f"{target.environment}'s standby leader has not reported its timeline and replay position yet"
    if lead.replay_lsn < final.lsn:
        return f"{target.environment} replayed {lsn_text(lead.replay_lsn)} of {lsn_text(final.lsn)}"
    return None


def ahead_of_holder(target: SiteState) -> str | None:
    """Why promoting the target's lock holder would discard WAL another member of its site holds (None: it would
    not, as far as the reports say): a member on the holder's timeline or later reporting a position past the
    holder's. In a standby cluster members stream from the standby leader only, so such a member got that WAL
    elsewhere: typically as this site's primary, killed before its replica received its last commits, the site
    then fenced and the replica taking the lock. The holder never receives it; a promotion rewinds it away."""
    lead = holder(target)
    if lead is None or lead.lsn is None:
        return None
    ahead = [m for m in target.members if m.name != lead.name and m.lsn is not None and m.lsn > lead.lsn
             and (m.timeline is None or lead.timeline is None or m.timeline >= lead.timeline)]
    if not ahead:
        return None
    held = ", ".join(f"{m.name} {lsn_text(m.lsn)}" for m in ahead if m.lsn is not None)
    return f"{held} past {lead.name}, {target.environment}'s lock holder, at {lsn_text(lead.lsn)}"


def holder_unreported(old: SiteState, proven: Collection[str] = ()) -> str | None:
    """Why the demoted site's furthest position is not known yet: its lock holder reports standby-leader but no
    position (PostgreSQL restarting as a standby). A one-member site's Patroni 4.1.5 keeps the lock through its
    demotion and writes no new `optime` then (`update_leader(..., None)`): the lock's optime is the last loop's,
    older than the last commits before the shutdown checkpoint, and only the holder's own report as standby
    leader (its replay of its own WAL, up to that checkpoint) says where its data ends. A gate that passed on the
    stale optime promoted a target that had not received those commits (drills killed-rolegen and hung-patroni,
    the target's walreceiver restarting for the unslot as the old leader shut down). A holder in `proven` proved
    where its data ends by its own report of its clean shutdown (shutdown_end): nothing to wait for."""
    lead = holder(old)
    if lead is None or lead.name in proven or lead.role != "standby-leader":
        return None
    if lead.container_running is False or lead.lsn is not None:
        return None
    return f"{old.environment}'s {lead.name} reports standby-leader but not yet where its data ends"


def replay_gap(target: SiteState, final: Position) -> int | None:
    """Bytes the target's standby leader still has to replay to reach `final` (None: unknown)."""
    lead = holder(target)
    if lead is None or lead.replay_lsn is None:
        return None
    return max(final.lsn - lead.replay_lsn, 0)


def lsn_text(lsn: int) -> str:
    """PostgreSQL's notation: 0/5000060."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def history(state: SiteState) -> dict[int, int]:
    """Patroni's `history` annotation as {timeline: LSN where it ended}."""
    try:
        entries = json.loads(state.config_annotations.get("history") or "[]")
    except ValueError:
        return {}
    out: dict[int, int] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, list) and len(entry) >= 2 and str(entry[0]).isdigit() and str(entry[1]).isdigit():
            out[int(entry[0])] = int(entry[1])
    return out

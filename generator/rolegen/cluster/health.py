"""Is the pair healthy: the predicates `rolegen status`, the switchover's preflight (fresh and resumed) and the
failback's catch-up share, pure over site snapshots, with one set of cut-offs: the standby leader streams from
its peer, replays within MAX_LAG_BYTES of the leader's position, and both sites hold one system id."""

from __future__ import annotations

from rolegen.cluster.site_state import SiteState

# A switchover refuses a standby further behind: its gate would hold writes off while the rest is replayed.
MAX_LAG_BYTES = 16 * 1024 * 1024


def replay_lag(standby: SiteState, leader: SiteState) -> int | None:
    """Bytes `standby`'s leading member has still to replay of `leader`'s position (None: unknown)."""
    mine, theirs = standby.leader_member, leader.leader_member
    if mine is None or theirs is None or mine.replay_lsn is None or theirs.lsn is None:
        return None
    return max(theirs.lsn - mine.replay_lsn, 0)


def lag_over_bound(standby: SiteState, leader: SiteState) -> int | None:
    """The replay lag when it is known and over MAX_LAG_BYTES (None otherwise)."""
    lag = replay_lag(standby, leader)
    return lag if lag is not None and lag > MAX_LAG_BYTES else None


def caught_up(standby: SiteState, leader: SiteState) -> bool:
    """Known to replay within MAX_LAG_BYTES (an unknown lag is not caught up)."""
    lag = replay_lag(standby, leader)
    return lag is not None and lag <= MAX_LAG_BYTES


def not_streaming(standby: SiteState) -> str | None:
    """What the standby leader reports instead of `streaming` (None: it streams, or no standby leader leads)."""
    if standby.live_role != "standby-leader":
        return None
    lead = standby.leader_member
    state = lead.state if lead is not None else None
    return None if state == "streaming" else f"standby leader {state or 'state unknown'}"


def system_ids_differ(one: SiteState, other: SiteState) -> bool:
    """Both sites report a system id (`initialize`) and they differ: not one database."""
    return bool(one.initialize) and bool(other.initialize) and one.initialize != other.initialize

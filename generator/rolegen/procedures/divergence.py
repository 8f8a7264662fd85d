"""Divergence, a pure rule over two site snapshots (no IO, no clock reads): a site whose data went past the point
where the leader's timeline began cannot follow it as-is (a colliding timeline *number* included), and which
repair it needs. Evidence: both sites' Patroni `history`, the members' reported timelines and LSNs, and rolegen's
records of the leader's promotion and of the candidate's fence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rolegen.cluster.site_state import SiteState
from rolegen.procedures.rules import history, holder, lsn_text, site_timeline


def _fence_proves(candidate: SiteState, promotion: dict[str, object]) -> bool:
    """The candidate was fenced for this promotion with every member below the timeline it left: after that
    fence no member of it could promote, so a later timeline can only have come from the leader."""
    fence = candidate.records.fence or {}
    before, began = promotion.get("timeline_before"), promotion.get("timeline")
    # Every fenced member below the timeline the leader began (once settled; else the one it left, inclusive).
    bound = began - 1 if isinstance(began, int) else before
    seen = fence.get("max_timeline")
    return (
        fence.get("promotion") == promotion.get("id")
        and isinstance(before, int)
        and isinstance(bound, int)
        and (seen is None or (isinstance(seen, int) and seen <= bound))
        and not fence.get("writers")
    )


@dataclass(frozen=True)
class Divergence:
    """`repair`: pg_rewind finds the divergence point from both timeline histories only when the timeline
    numbers differ (`rewind`); a reused number, or a site that went further than the leader, needs `reseed`."""

    reason: str
    repair: Literal["rewind", "reseed"]


def divergence(candidate: SiteState, leader: SiteState) -> Divergence | None:
    """Why `candidate`'s data cannot follow `leader` as it is (None: nothing shows it went past the leader's
    history). Evidence: both sites' `history`, the members' reported timelines/LSNs, and rolegen's records
    of the leader's promotion and of the candidate's fence."""
    lead = holder(leader)
    # Only a primary's timeline is exact. Without a leading site (a resumed switchover: both are standbys) the
    # histories and the reference site's highest known timeline still show a candidate that left its history.
    exact = lead is not None and lead.timeline is not None and lead.role == "leader"
    current = lead.timeline if exact and lead is not None else site_timeline(leader)
    theirs, mine = history(leader), history(candidate)
    for timeline in sorted(set(theirs) & set(mine)):
        if theirs[timeline] != mine[timeline]:
            return Divergence(
                f"timeline {timeline} ended at {lsn_text(mine[timeline])} on {candidate.environment} but at "
                f"{lsn_text(theirs[timeline])} on {leader.environment}: the same timeline number was used twice",
                "reseed",
            )
    if current is None:
        return None
    promotion = leader.records.promotion or {}
    before, began, old_top = (promotion.get(k) for k in ("timeline_before", "timeline", "old_timeline"))
    mine_promoted = exact and promotion.get("from") == candidate.environment and isinstance(before, int)
    if mine_promoted and isinstance(began, int) and isinstance(old_top, int) and old_top >= began:
        return Divergence(
            f"{candidate.environment} had reached timeline {old_top} before {leader.environment} was promoted "
            f"onto timeline {began}: the same timeline number was used twice", "reseed")
    unproven = mine_promoted and isinstance(before, int) and not _fence_proves(candidate, promotion)
    for member in candidate.members:
        t = member.timeline
        if t is None:
            continue
        if t > current:
            return Divergence(
                f"{member.name} is on timeline {t}, past {leader.environment}'s {current}: it promoted on its own",
                "reseed",
            )
        if unproven and isinstance(before, int) and t <= before and not member.may_write:
            # A standby's report can lag its data (it names its last restartpoint's timeline), and nothing
            # fenced this site before the promotion: the report cannot clear it. It would read "not diverged"
            # until its walreceiver names the leader's timeline, then "diverged": say it once, from the start.
            return Divergence(
                f"{member.name} reports timeline {t} as a standby (a standby's report can lag its data) and "
                f"rolegen never saw {candidate.environment} fenced before it promoted {leader.environment}: "
                f"nothing proves {candidate.environment} reached {leader.environment}'s history by following",
                "reseed",
            )
        if unproven and isinstance(before, int) and before < t <= current:
            return Divergence(
                f"{member.name} is on timeline {t}, which {leader.environment} began when rolegen promoted it; "
                f"nothing proves {candidate.environment} reached it by following (it may have promoted on a "
                "colliding timeline number)",
                "reseed",
            )
        end = theirs.get(t)
        # Only a primary's report is exact: a standby whose walreceiver is idle reports the timeline of its last
        # restartpoint (stale, lower) with an LSN already on the next timeline. A fenced old primary's
        # divergence on an older timeline is what Patroni itself repairs with pg_rewind when it follows.
        if exact and t < current and end is not None and member.lsn is not None and member.lsn > end and \
                member.may_write:
            return Divergence(
                f"{member.name} holds WAL up to {lsn_text(member.lsn)} on timeline {t}, past "
                f"{lsn_text(end)} where {leader.environment}'s timeline {t + 1} began",
                "rewind",
            )
    return None

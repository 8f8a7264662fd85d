"""What an unplanned failover may do, as pure functions over what it observed (no IO, no clock reads):
`old_alive_proof` (the target's own reports prove the old site's PostgreSQL runs) and `failover_decision`."""

from __future__ import annotations

from typing import Literal

from rolegen.cluster.site_state import SiteState
from rolegen.procedures.rules import holder, lsn_text

Decision = Literal["refuse-healthy", "refuse-alive", "refuse-target", "promote-unreachable", "fence-first",
                   "fence-after", "done"]


def old_alive_proof(samples: list[SiteState]) -> str | None:
    """Why the target's own reports prove the old site's PostgreSQL runs (None: they do not). `samples`: the
    target read repeatedly (oldest first) while the old site's API did not answer. A standby cluster streams only
    from the old site, so its standby leader reporting `streaming`, or receiving WAL while watched, is proof.
    WAL received just before the old site failed appears in the next report: growth counts only past a report
    written while we watched (its text differs from the first read's)."""
    first, last = (holder(samples[0]), holder(samples[-1])) if samples else (None, None)
    if first is not None:
        fresh = [m for m in map(holder, samples[1:]) if m and m.name == first.name and m.role == "standby-leader"
                 and m.lsn is not None and m.status_text != first.status_text]
        base = fresh[0].lsn if fresh else None
        top = max((m.lsn for m in fresh[1:] if m.lsn is not None), default=None)
        if base is not None and top is not None and top > base:
            return f"its standby leader received WAL while watched ({lsn_text(base)} -> {lsn_text(top)})"
    if last is not None and last.role == "standby-leader" and last.state == "streaming":
        return "its standby leader reports streaming from it"
    return None


def failover_decision(
    target: SiteState, old: SiteState | None, *, old_leads: bool, alive: str | None = None,
    old_site_down: bool = False,
) -> tuple[Decision, str]:
    """What an unplanned failover does. `old`: None when its API did not answer for a whole retry window.
    `old_leads`: a member of the old site was *observed* leading (renewing its lock as a writable primary) — then
    this is not a failover. `alive`: old_alive_proof of the target's reports. `old_site_down`: the operator
    states the old site is down or fenced by other means (--old-site-down); it overrides `alive` only."""
    if target.dcs_role == "leader":
        if old is None:
            return "done", "already promoted; the old site's API does not answer: the fence is still pending"
        if old.dcs_role == "leader":
            return "fence-after", "already promoted; the old site's DCS config still declares leader: fence it"
        return "done", "already promoted and the old site is fenced"
    lead = holder(target)
    if lead is None or lead.role != "standby-leader" or lead.container_running is False:
        return "refuse-target", f"{target.environment} has no running standby leader to promote"
    if old is None and alive is not None:
        if old_site_down:
            return "promote-unreachable", f"--old-site-down: promoting although {alive}"
        return "refuse-alive", f"the old site is alive: {alive}; only its API does not answer from here"
    if old is None:
        return "promote-unreachable", "the old site's API does not answer: promote, then fence when it answers"
    if old_leads:
        return "refuse-healthy", "a member of the old site leads (it renews its lock as primary)"
    return "fence-first", "the old site's API answers: fence it first, then promote"

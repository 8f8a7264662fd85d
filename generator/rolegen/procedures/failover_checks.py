"""What an unplanned failover observes before it decides (failover_rules.failover_decision): both sites, read on
evidence.

The old site counts as "not answering" only after its API failed with ClusterUnreachable (kubectl's own timeout
included) for a whole retry window of about one ttl; any other error (Forbidden, a 5xx) stops the failover.
While it does not answer, the target is read again and again: its standby leader streaming, or receiving WAL,
proves the old site's PostgreSQL runs (failover_rules.old_alive_proof). The decision is taken again after the
confirmation prompt, from fresh reads: a prompt can wait minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rolegen.cluster.kubectl import ClusterUnreachable
from rolegen.cluster.site_state import SiteState
from rolegen.cluster.wait import poll
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.procedures.base import Pair, status_line
from rolegen.procedures.failover_rules import Decision, failover_decision, old_alive_proof
from rolegen.procedures.rules import holder


def read_old(pair: Pair) -> SiteState | None:
    """One read of the old site (None: its API did not answer). Only for steps that decide nothing from it."""
    try:
        return pair.read(pair.other)
    except ClusterUnreachable:
        return None


def old_leads(pair: Pair, state: SiteState, watch: float) -> bool:
    """A member of the old site reports a writable primary holding the lock, and the lock is renewed while we
    watch (up to `watch` seconds): it is alive and leading. A lock not renewed is a dead leader; a read that
    fails meanwhile proves nothing either way (the watch goes on)."""
    lead = holder(state)
    if state.dcs_role != "leader" or lead is None or lead.role != "leader" or lead.container_running is False:
        return False
    try:
        now = poll(lambda: read_old(pair), lambda now: now is not None and now.leader_version != state.leader_version,
                   timeout=watch, every=0.3, what=f"{pair.other.environment}'s leader lock to be renewed",
                   sleep_first=True)
    except WaitTimedOut:
        return False  # not renewed while watched: a dead leader
    assert now is not None
    lead = holder(now)
    return lead is not None and lead.role == "leader" and now.leader_annotations.get("leader") == lead.name


@dataclass
class Evidence:
    """Both sites as observed: `old` None when its API did not answer for the whole window; `samples`: the
    target's reads, oldest first (several while the old site did not answer)."""

    target: SiteState
    old: SiteState | None
    samples: list[SiteState] = field(default_factory=list)
    leads: bool = False
    tries: int = 0
    waited: float = 0.0

    def decide(self, old_site_down: bool) -> tuple[Decision, str]:
        return failover_decision(self.target, self.old, old_leads=self.leads, alive=old_alive_proof(self.samples),
                                 old_site_down=old_site_down)


def observe(pair: Pair, timeout: float, before: Evidence | None = None) -> Evidence:
    """Read both sites. The old site's API is retried for about one ttl of the target (bounded by `timeout`);
    with `before` (a re-read after the prompt) the target's earlier samples count too, and an old site that did
    not answer before is tried once (a long silence was established already)."""
    target = pair.read(pair.to)
    samples = [*(before.samples if before else []), target]
    window = 0.0 if before is not None and before.old is None else min(target.ttl, timeout)
    start, tries = time.monotonic(), 0

    def read_other() -> SiteState | None:
        nonlocal tries
        tries += 1
        try:
            return pair.read(pair.other)
        except ClusterUnreachable:
            samples.append(pair.read(pair.to))  # watch the target meanwhile: does it still hear from the old site?
            return None

    try:
        old = poll(read_other, lambda s: s is not None, timeout=window, every=1.0,
                   what=f"{pair.other.environment}'s API to answer")
    except WaitTimedOut:
        old = None
    evidence = Evidence(samples[-1], old, samples, tries=tries, waited=time.monotonic() - start)
    if old is not None:
        # Watching the lock costs up to a ttl: after the prompt only when the lock changed since the first look.
        renewed = before is None or before.old is None or old.leader_version != before.old.leader_version
        evidence.leads = renewed and old_leads(pair, old, watch=min(old.ttl, timeout))
    return evidence


def log_evidence(pair: Pair, evidence: Evidence) -> None:
    pair.log(f"   {status_line(evidence.target)}")
    if evidence.old is not None:
        pair.log(f"   {status_line(evidence.old)}")
    else:
        pair.log(f"   {pair.other.environment}: API unreachable ({evidence.tries} tries over {evidence.waited:.0f}s)")


def recheck(pair: Pair, evidence: Evidence, decision: Decision, why: str, timeout: float,
            old_site_down: bool) -> Evidence:
    """After the prompt, before any write: read both sites again and decide again; a different decision stops
    the failover and says what changed."""
    fresh = observe(pair, timeout, before=evidence)
    now, now_why = fresh.decide(old_site_down)
    if now != decision:
        log_evidence(pair, fresh)
        raise RolegenError(
            f"the sites changed while the prompt waited: the decision was {decision} ({why}), it is now {now} "
            f"({now_why}); nothing was changed",
            hint=f"rolegen status, then re-run rolegen failover --to {pair.to.environment}",
        )
    return fresh

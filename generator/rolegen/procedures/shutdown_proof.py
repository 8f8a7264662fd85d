"""The old primary's own proof that it has shut down for its demotion (its pg_control report, cluster.control):
what lets a switchover's demotion check and LSN gate pass about two seconds before Patroni 4.1.5 publishes
anything. Pure functions over site snapshots, used by rolegen.procedures.rules."""

from __future__ import annotations

from rolegen.cluster.site_state import Member, SiteState


def control_texts(state: SiteState) -> dict[str, str]:
    """Each member's pg_control report as published (cluster.control), the baseline of shutdown_proof."""
    return {m.name: m.control.text for m in state.members if m.control is not None}


def shutdown_proof(member: Member, before: dict[str, str]) -> int | None:
    """Where `member`'s data ends, when its own report since `before` (control_texts of a read before the fence)
    says that its PostgreSQL shut down cleanly while its Patroni was stopping it: the shutdown checkpoint, the
    last record it wrote (every commit it acknowledged lies before it). None: no such proof.

    That member accepts no writes any more, and its Patroni, stopping it for a demotion (or its own exit), starts
    it again only as a standby under the fence. A report unchanged since `before` proves nothing about this
    fence; a restart (Patroni says `restarting`), a crash (pg_control stays `in production`), a stop by anyone
    but Patroni, or a Patroni that did not answer is no proof: rolegen then waits for Patroni's own reports."""
    control = member.control
    if control is None or not control.stopped_by_patroni or before.get(member.name) == control.text:
        return None
    return control.checkpoint

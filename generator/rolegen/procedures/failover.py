"""Unplanned failover: the leader site failed. Fence it first whenever its API answers, so it can never lead
again behind the new leader's back; promote its peer only once no member of it may accept writes and the peer
has everything the old site still holds. When its API does not answer, promote and name the pending fence.

Decisions are rules.failover_decision; the old site's health is *observed* (a lock renewed while we watch),
never inferred from comparing its timestamps with this machine's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.kubectl import ClusterUnreachable
from rolegen.load import GENERATED_DIR
from rolegen.procedures.base import Pair, record_roles, status_line
from rolegen.procedures.rules import Decision, Settling, final_position, gate_blocker, holder, lsn_text, replay_gap
from rolegen.procedures.rules import failover_decision as decide
from rolegen.procedures.steps import Step, execute, runbook
from rolegen.records import PROMOTION
from rolegen.site_state import SiteState


def steps(pair: Pair) -> list[Step[_Run]]:
    to, old = pair.to, pair.other
    return [
        Step(
            "Preflight",
            f"{to.environment} reports standby-leader. If {old.environment}'s API answers and one of its members\n"
            f"is seen leading (renewing its lock as primary), this is not a failover: use rolegen switchover.",
            _check,
        ),
        Step(
            f"Fence {old.environment} first",
            f"Its {old.config_map} `config` gets standby_cluster -> {old.peer.host}:{old.peer.port}. Wait until no\n"
            f"member of {old.environment} may accept writes (each reports a standby role, or is gone); a member "
            "that keeps\nreporting primary (a hung Patroni) stops the failover here, with the command that "
            f"clears it.\nFirst, {to.environment} stops naming its DR slot: a fenced site keeps none, and "
            f"{to.environment} must stream\nwhat it holds.",
            _fence,
            _fences_first,
            when="its API answers",
        ),
        Step(
            "Catch up",
            f"While members of {old.environment} run with their data, wait until {to.environment} has replayed "
            f"the most\n{old.environment} may hold (its lock's optime or a member's own LSN): the LSN gate of a "
            "switchover.\nNot reached within --timeout: nothing is promoted (--accept-data-loss promotes anyway).",
            _catch_up,
            _fences_first,
        ),
        Step(
            f"Promote {to.environment}",
            f"Record the promotion ({to.scope}-rolegen), then remove standby_cluster from {to.environment}'s "
            f"{to.config_map}\n`config` annotation; wait until it reports leader. If {old.environment}'s API did "
            "not answer, acknowledged\nwrites it had not shipped are lost (asynchronous replication) and the "
            "exact fence command is printed:\nrun it (or re-run this failover) before its members come back.",
            _promote,
            _promotes,
        ),
        Step(
            "Record the new roles",
            f"rolegen render --env {old.environment} --role standby-leader, then --env {to.environment} --role leader.",
            _record,
        ),
    ]


@dataclass
class FailoverResult:
    to: str
    old: str
    promoted: bool = False
    fenced: bool = False
    fence_command: str | None = None
    decision: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def _read_old(pair: Pair) -> SiteState | None:
    try:
        return pair.read(pair.other)
    except ClusterUnreachable:
        return None


def old_leads(pair: Pair, state: SiteState, watch: float) -> bool:
    """A member of the old site reports a writable primary holding the lock, and the lock is renewed while we
    watch (up to `watch` seconds): it is alive and leading. A lock not renewed is a dead leader."""
    lead = holder(state)
    if state.dcs_role != "leader" or lead is None or lead.role != "leader" or lead.container_running is False:
        return False
    deadline = time.monotonic() + watch
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = _read_old(pair)
        if now is None:
            return False
        if now.leader_version != state.leader_version:
            lead = holder(now)
            return lead is not None and lead.role == "leader" and now.leader_annotations.get("leader") == lead.name
    return False


@dataclass
class _Run:
    """One failover run: its options, the decision its preflight took, and what the catch-up left the promotion."""

    pair: Pair
    confirm: Callable[[str], None]
    timeout: float
    accept_data_loss: bool
    result: FailoverResult
    decision: Decision | None = None
    t_state: SiteState | None = None
    o_state: SiteState | None = None
    timeline: int | None = None  # the timeline the target leaves (known once the fenced site's position settled)


def run(
    pair: Pair, *, confirm: Callable[[str], None], timeout: float = 60, accept_data_loss: bool = False
) -> FailoverResult:
    result = FailoverResult(pair.to.environment, pair.other.environment)
    execute(steps(pair), _Run(pair, confirm, timeout, accept_data_loss, result), pair.log)
    result.timings = dict(pair.timings)
    return result


def _fences_first(run: _Run) -> bool:
    return run.decision == "fence-first"


def _promotes(run: _Run) -> bool:
    return run.decision in ("fence-first", "promote-unreachable")


def _check(run: _Run) -> None:
    pair, to, old, log = run.pair, run.pair.to, run.pair.other, run.pair.log
    t_state, o_state = pair.read(to), _read_old(pair)
    log(f"   {status_line(t_state)}")
    log(f"   {status_line(o_state)}" if o_state else f"   {old.environment}: API unreachable")
    leads = o_state is not None and old_leads(pair, o_state, watch=min(o_state.ttl, run.timeout))
    decision, why = decide(t_state, o_state, old_leads=leads)
    run.decision, run.result.decision, run.t_state, run.o_state = decision, decision, t_state, o_state
    log(f"   decision: {decision} ({why})")
    if decision == "refuse-healthy":
        raise RolegenError(
            f"{old.environment} is alive and leading: refusing an unplanned failover ({why})",
            hint=f"for a planned move use rolegen switchover --to {to.environment}",
        )
    if decision == "refuse-target":
        raise RolegenError(f"nothing healthy to promote: {why}", hint="rolegen status")
    if decision in ("fence-first", "promote-unreachable"):
        run.confirm(f"Fail over to {to.environment} ({why})?")


def _fence(run: _Run) -> None:
    pair, to, old = run.pair, run.pair.to, run.pair.other
    assert run.o_state is not None
    pair.unslot(pair.read(to))
    run.o_state = pair.demote(old, run.o_state, run.timeout, leader=to, promotion=None)
    pair.mark("fenced")
    pair.log(f"   {old.environment} fenced: no member may accept writes")


def _catch_up(run: _Run) -> None:
    pair, to, old, log = run.pair, run.pair.to, run.pair.other, run.pair.log
    o_state = run.o_state
    assert o_state is not None
    final = final_position(o_state)
    blocker: str | None = None
    if final is not None:
        # Members that crashed report less than they hold while they replay their own WAL: the position counts
        # only once it stopped moving over Patroni loops (rules.Settling).
        settling, first = Settling(), final
        settling.observe(o_state)
        seen: list[str | None] = [None]
        gap: list[int | None] = [None]

        def caught_up() -> bool:
            t_state, now = pair.read_both()
            best = settling.observe(now) or first
            seen[0], gap[0] = gate_blocker(t_state, best), replay_gap(t_state, best)
            if seen[0] is None and not settling.settled(now):
                waiting = Settling.unreported(now)
                seen[0] = (f"{', '.join(waiting)} of {old.environment} not reported since restarting" if waiting
                           else f"{old.environment}'s position {lsn_text(best.lsn)} has not settled yet")
            return seen[0] is None

        # A member whose Pod remains comes back (the kubelet restarts it): wait for it up to the timeout. Only a
        # site without Pods has nothing more to say.
        try:
            pair.wait(f"{to.environment} to replay what {old.environment} holds", caught_up,
                      run.timeout if o_state.members else 2.0, gap=lambda: gap[0])
        except WaitTimedOut:
            # Only a wait that ran out is "not caught up"; a failed read propagates and stops the failover.
            blocker = seen[0] or f"{to.environment} did not reach {old.environment}'s position in time"
        final = settling.best or final
    if blocker is not None:
        assert final is not None
        if not run.accept_data_loss:
            raise RolegenError(
                f"{to.environment} has not replayed everything {old.environment} may hold ({blocker}); "
                f"{old.environment} is fenced and takes no writes; nothing was promoted",
                hint=f"check the tunnel (rolegen status); start {old.environment}'s members if they are down "
                f"(they return fenced, as standbys); then re-run rolegen failover --to {to.environment}. To "
                "promote now and lose what was not replayed: add --accept-data-loss",
            )
        log(f"   --accept-data-loss: promoting although {blocker}")
    pair.mark("caught_up")
    run.t_state = pair.read(to)
    lead = holder(run.t_state)
    run.timeline = max(t for t in (lead.timeline if lead else None, final.timeline if final else None)
                       if t is not None) \
        if (lead and lead.timeline is not None) or (final and final.timeline is not None) else None


def _promote(run: _Run) -> None:
    """Record the promotion, promote, wait until the target leads. Fenced first: the timeline it leaves is the
    one the catch-up settled on; else the one its standby leader reports."""
    pair, to = run.pair, run.pair.to
    assert run.t_state is not None
    lead = holder(run.t_state)
    before = run.timeline if run.timeline is not None else (lead.timeline if lead else None)
    pair.record_promotion(run.t_state, timeline_before=before, fenced_first=run.decision == "fence-first")
    pair.write_role(to, "leader", run.t_state)
    pair.mark("promote_written")
    pair.wait(f"{to.environment} to report leader", lambda: _leads(pair), run.timeout)
    pair.mark("promoted")
    settle_promotion(pair)
    run.result.promoted = True
    run.result.fenced = run.decision == "fence-first"


def _record(run: _Run) -> None:
    pair, to, old, log, result = run.pair, run.pair.to, run.pair.other, run.pair.log, run.result
    record_roles(pair, leader=to, standby=old)
    if run.decision in ("promote-unreachable", "fence-after", "done"):
        result.fenced = fence_after(pair, run.timeout)
    if not result.fenced:
        result.fence_command = (
            f"kubectl --context {old.context or '<context>'} -n {old.namespace} patch configmap {old.config_map} "
            f"--type merge --patch-file "
            f"{pair.env_dir.name}/{GENERATED_DIR}/{old.environment}/patches/{old.config_map}.yaml"
        )
        log(f"   FENCE PENDING: {old.environment}'s API does not answer. Before its members start again run:")
        log(f"     {result.fence_command}")
        log(f"   (or re-run: rolegen failover --to {to.environment} -- once promoted it only fences)")


def settle_promotion(pair: Pair) -> None:
    """Complete the promotion record with the timeline the new leader reports (a standby leader may have
    reported a stale, lower timeline before: the new timeline minus one is the one it really left)."""
    state = pair.read(pair.to)
    lead, promotion = holder(state), state.records.promotion
    if not promotion or lead is None or lead.role != "leader" or lead.timeline is None:
        return
    if promotion.get("timeline") == lead.timeline:
        return
    before = promotion.get("timeline_before")
    left = max(before, lead.timeline - 1) if isinstance(before, int) else lead.timeline - 1
    pair.record(pair.to, PROMOTION, {**promotion, "timeline": lead.timeline, "timeline_before": left})


def _leads(pair: Pair) -> bool:
    lead = holder(pair.read(pair.to))
    return lead is not None and lead.role == "leader"


def fence_after(pair: Pair, timeout: float) -> bool:
    """The target already leads: fence the old site if its API answers (False if it does not)."""
    old, to = pair.other, pair.to
    state = _read_old(pair)
    if state is None:
        return False
    promotion = (pair.read(to).records.promotion or {}).get("id")
    if state.dcs_role == "standby-leader" and (state.records.fence or {}).get("promotion") == promotion:
        pair.log(f"   {old.environment} already follows {to.environment}")
        return True
    pair.log(f"   fencing {old.environment}: its DCS config gets standby_cluster -> {to.environment}")
    pair.demote(old, state, timeout, leader=to, promotion=promotion)
    pair.log(f"   {old.environment} fenced: its DCS config now follows {to.environment}")
    return True


def dry_run(pair: Pair) -> str:
    return runbook(f"Failover to {pair.to.environment} (unplanned: {pair.other.environment} failed)", steps(pair))

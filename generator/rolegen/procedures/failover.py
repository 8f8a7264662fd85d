"""Unplanned failover: the leader site failed. Fence it first whenever its API answers, so it can never lead
again behind the new leader's back; promote its peer only once no member of it may accept writes and the peer
has everything the old site still holds. When its API does not answer, promote and name the pending fence.

Decisions are failover_rules.failover_decision over what procedures.failover_checks observed: the old site's health is
*observed* (a lock renewed while we watch, its standby streaming), never inferred from one failed read or from
comparing its timestamps with this machine's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rolegen.cluster.site_state import SiteState
from rolegen.errors import RolegenError
from rolegen.offline.load import GENERATED_DIR
from rolegen.procedures import dependent_steps, witness_step
from rolegen.procedures.base import Pair, record_roles
from rolegen.procedures.failover_catchup import catch_up, own_members
from rolegen.procedures.failover_checks import log_evidence, observe, read_old, recheck
from rolegen.procedures.failover_rules import Decision
from rolegen.procedures.rules import holder
from rolegen.procedures.steps import Later, Step, execute, runbook
from rolegen.witness.move import WitnessNotMoved

# seconds the target may take to show its lock holder holds what its own members report (woken: a loop or two)
OWN_MEMBERS_WAIT = 10.0
UNATTENDED_API_WINDOW = 1.0  # seconds: the guard's failover tries the old site's API twice (observe: every 1 s)


def steps(pair: Pair) -> list[Step[_Run]]:
    to, old = pair.to, pair.other
    return [
        Step(
            "Preflight",
            f"{to.environment} reports standby-leader. If {old.environment}'s API answers and one of its members\n"
            f"is seen leading (renewing its lock as primary), this is not a failover: use rolegen switchover.\n"
            f"Its API counts as not answering only after about one ttl of retries; if {to.environment} meanwhile\n"
            f"streams (or receives WAL) from {old.environment}, that site is alive: refused, unless "
            "--old-site-down.\nAfter the prompt both sites are read again; a changed decision stops here.\n"
            "Run by the standby site's guard: two tries a second apart, and no re-read (nobody was asked).",
            _check,
        ),
        *dependent_steps.hook(pair, "failover", "before_demote", _promotes),
        *dependent_steps.quiesce(pair, old, _fences_first, stopped="nothing was fenced or promoted",
                                 rerun=f"rolegen failover --to {to.environment}"),
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
        *dependent_steps.hook(pair, "failover", "after_demote", _fences_first),
        Step(
            "Catch up",
            f"While members of {old.environment} run with their data, wait until {to.environment} has replayed "
            f"the most\n{old.environment} may hold (its lock's optime or a member's own LSN): the LSN gate of a "
            "switchover.\nNot reached within --timeout: nothing is promoted (--accept-data-loss promotes anyway).\n"
            f"The guard's run does not wait while {to.environment} receives nothing: nothing more can arrive.",
            _catch_up,
            _fences_first,
        ),
        *witness_step.steps(pair, _move_witness, _promotes, unmoved="nothing is promoted and the run fails"),
        *dependent_steps.hook(pair, "failover", "before_promote", _promotes),
        Step(
            f"Promote {to.environment}",
            f"Record the promotion ({to.scope}-rolegen), then remove standby_cluster from {to.environment}'s "
            f"{to.config_map}\n`config` annotation; wait until it reports leader. If {old.environment}'s API did "
            "not answer, acknowledged\nwrites it had not shipped are lost (asynchronous replication) and the "
            "exact fence command is printed:\nrun it (or re-run this failover) before its members come back.",
            _promote,
            _promotes,
        ),
        *dependent_steps.bring_up(pair, _leads_now, rerun=f"rolegen failover --to {to.environment}"),
        *dependent_steps.hook(pair, "failover", "after_promote", _promotes),
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


@dataclass
class _Run:
    """One failover run: its options, the decision its preflight took, and what the catch-up left the promotion."""

    pair: Pair
    confirm: Callable[[str], None]
    timeout: float
    accept_data_loss: bool
    result: FailoverResult
    decision: Decision | None = None
    target_state: Later[SiteState] = field(default_factory=lambda: Later("the target as last read"))
    # Set only when the old site's API answered: the steps that read it run only then.
    old_state: Later[SiteState] = field(default_factory=lambda: Later("the old site as last read"))
    old_timeline: int | None = None  # the old site's highest timeline once its position settled (N11)
    old_site_down: bool = False  # --old-site-down: the operator fenced or powered off the old site by other means
    # How long the waits for evidence last (the old site's API, its lock, its final position; None: `timeout`):
    # the witness guard's short one, whose rules are the evidence (no lease change for promote_after, a standby
    # that receives nothing); with accept_data_loss it then promotes with what arrived.
    evidence_timeout: float | None = None
    confirmed: bool = False  # the operator agreed to this run's changes (fencing included)

    @property
    def unattended(self) -> bool:
        """The standby site's guard runs it (evidence_timeout set): its decision rests on the witness rules, it
        is answered at once, and every second before the promotion counts against fence_after + 15 s."""
        return self.evidence_timeout is not None

    @property
    def api_window(self) -> float:
        """How long the old site's API is retried, and its lock watched. Unattended: two tries a second apart
        (the rules decided already; this read only picks fence-first or promote-then-fence, and the old site's
        own guard fenced it by fence_after either way)."""
        if self.evidence_timeout is None:
            return self.timeout
        return min(self.evidence_timeout, UNATTENDED_API_WINDOW)


def run(
    pair: Pair, *, confirm: Callable[[str], None], timeout: float = 60, accept_data_loss: bool = False,
    old_site_down: bool = False, evidence_timeout: float | None = None,
) -> FailoverResult:
    result = FailoverResult(pair.to.environment, pair.other.environment)
    context = _Run(pair, confirm, timeout, accept_data_loss, result, old_site_down=old_site_down,
                   evidence_timeout=evidence_timeout)
    execute(steps(pair), context, pair.log)
    result.timings = dict(pair.timings)
    return result


def _fences_first(run: _Run) -> bool:
    return run.decision == "fence-first"


def _promotes(run: _Run) -> bool:
    return run.decision in ("fence-first", "promote-unreachable")


def _leads_now(run: _Run) -> bool:
    """The target leads once this run promoted it, or already did (a re-run after a stop brings its dependents up)."""
    return run.decision in ("fence-first", "promote-unreachable", "fence-after", "done")


def _check(run: _Run) -> None:
    pair, to, old, log = run.pair, run.pair.to, run.pair.other, run.pair.log
    evidence = observe(pair, run.api_window)
    log_evidence(pair, evidence)
    decision, why = evidence.decide(run.old_site_down)
    run.decision, run.result.decision = decision, decision
    log(f"   decision: {decision} ({why})")
    if decision == "refuse-healthy":
        raise RolegenError(
            f"{old.environment} is alive and leading: refusing an unplanned failover ({why})",
            hint=f"for a planned move use rolegen switchover --to {to.environment}",
        )
    if decision == "refuse-alive":
        raise RolegenError(
            f"refusing an unplanned failover: {why}; promoting {to.environment} now would make two primaries",
            hint=f"restore your access to {old.environment}'s API (then re-run: it fences {old.environment} "
            f"first), or, once {old.environment} is powered off or fenced by other means, re-run rolegen failover "
            f"--to {to.environment} --old-site-down (a stream from a site that lost power can look alive until "
            "wal_receiver_timeout, 60 s by default, has passed)",
        )
    if decision == "refuse-target":
        raise RolegenError(f"nothing healthy to promote: {why}", hint="rolegen status")
    if decision in ("fence-first", "promote-unreachable", "fence-after"):
        question = (f"{to.environment} already leads: fence {old.environment} (standby_cluster -> {to.environment})?"
                    if decision == "fence-after" else f"Fail over to {to.environment} ({why})?")
        run.confirm(question)
        run.confirmed = True
        if not run.unattended:  # nobody was asked, no time passed: a re-read would only delay the promotion
            evidence = recheck(pair, evidence, decision, why, run.timeout, run.old_site_down)
    run.target_state.set(evidence.target)
    if evidence.old is not None:
        run.old_state.set(evidence.old)


def _fence(run: _Run) -> None:
    pair, to, old = run.pair, run.pair.to, run.pair.other
    pair.unslot(pair.read(to))
    run.old_state.set(pair.demote(old, run.old_state.get(), run.timeout, leader=to, promotion=None))
    pair.mark("fenced")
    pair.log(f"   {old.environment} fenced: no member may accept writes")


def _catch_up(run: _Run) -> None:
    pair, to, old, log = run.pair, run.pair.to, run.pair.other, run.pair.log
    old_state = run.old_state.get()
    wait_for = (run.evidence_timeout or run.timeout) if old_state.members else 2.0
    final, blocker = catch_up(pair, old_state, run.target_state.get(), wait_for=wait_for, unattended=run.unattended)
    if blocker is not None:
        if not run.accept_data_loss:
            raise RolegenError(
                f"{to.environment} has not replayed everything {old.environment} may hold ({blocker}); "
                f"{old.environment} is fenced and takes no writes; nothing was promoted",
                hint=f"check the tunnel (rolegen status); start {old.environment}'s members if they are down "
                f"(they return fenced, as standbys); then re-run rolegen failover --to {to.environment}. To "
                "promote now and lose what was not replayed: add --accept-data-loss",
            )
        log(f"   --accept-data-loss: promoting although {blocker}")
    if final is not None:
        pair.note(lsn=final.lsn, timeline=final.timeline)
    state, ahead = own_members(pair, pair.read(to), min(run.timeout, OWN_MEMBERS_WAIT))
    if ahead is not None:
        lead = holder(state)
        name = lead.name if lead else "its lock holder"
        if not run.accept_data_loss:
            raise RolegenError(
                f"promoting {to.environment} would discard WAL its own members hold ({ahead}); nothing was promoted",
                hint=f"make the member holding the most {to.environment}'s standby leader: delete {name}'s Pod "
                f"(kubectl --context {to.context or '<context>'} -n {to.namespace} delete pod {name}; Patroni's "
                f"leader race then picks the member holding the most), wait until rolegen status shows it, then "
                f"re-run rolegen failover --to {to.environment}. To promote {name} now and lose that WAL: add "
                "--accept-data-loss",
            )
        log(f"   --accept-data-loss: promoting {name} although {ahead}")
    pair.mark("caught_up")
    run.target_state.set(state)
    run.old_timeline = final.timeline if final else None


def _move_witness(run: _Run) -> None:
    """Before the promotion (after the fence, or the decision to promote with the old site's API silent). With the
    standby's guard, the Lease is the target's already: the guard took it before it ran these steps."""
    to, old = run.pair.to.environment, run.pair.other.environment
    try:
        witness_step.move(run.pair, run.timeout)
    except WitnessNotMoved as exc:  # mode automatic: the target's pre_promote would refuse its promotion
        fenced = run.decision == "fence-first"
        where = f"{old} is fenced and takes no writes" if fenced else f"{old}'s API did not answer"
        raise RolegenError(
            f"{exc.message}: {to}'s guard would refuse its promotion (mode automatic); {where}; nothing was promoted",
            hint=f"restore the route to the witness (rolegen status shows it), then re-run rolegen failover --to {to}",
        ) from None


def _promote(run: _Run) -> None:
    """Record the promotion, promote, wait until the target leads. The record keeps the timeline the target's
    own standby leader reports (what it leaves) and, apart, the old site's highest: never their max, which would
    hide a timeline number the old site reached on its own (divergence.divergence compares them)."""
    pair, to = run.pair, run.pair.to
    target_state = run.target_state.get()
    lead = holder(target_state)
    # Unattended with the old site's API silent: its fence record is not read again now (a silent API costs a
    # request timeout); the fence written once it answers names this promotion (fence_after).
    pair.record_promotion(target_state, timeline_before=lead.timeline if lead else None,
                          fenced_first=run.decision == "fence-first", old_timeline=run.old_timeline,
                          link=not (run.unattended and run.decision == "promote-unreachable"))
    pair.write_role(to, "leader", target_state)
    pair.mark("promote_written")
    pair.wait(f"{to.environment} to report leader", lambda: _leads(pair), run.timeout)
    pair.mark("promoted")
    pair.settle_promotion()
    run.result.promoted = True
    run.result.fenced = run.decision == "fence-first"


def _record(run: _Run) -> None:
    pair, to, old, log, result = run.pair, run.pair.to, run.pair.other, run.pair.log, run.result
    record_roles(pair, leader=to, standby=old)
    if run.decision in ("promote-unreachable", "fence-after", "done"):
        result.fenced = fence_after(pair, run.timeout, confirm=None if run.confirmed else run.confirm)
    if not result.fenced:
        result.fence_command = (
            f"kubectl --context {old.context or '<context>'} -n {old.namespace} patch configmap {old.config_map} "
            f"--type merge --patch-file "
            f"{pair.env_dir.name}/{GENERATED_DIR}/{old.environment}/patches/{old.config_map}.yaml"
        )
        log(f"   FENCE PENDING: {old.environment}'s API does not answer. Before its members start again run:")
        log(f"     {result.fence_command}")
        log(f"   (or re-run: rolegen failover --to {to.environment} -- once promoted it only fences)")
        if old.dependents:  # they could not be quiesced: its API did not answer
            log(f"   {old.environment}'s dependents were not quiesced; once its API answers: rolegen apply --env "
                f"{old.environment} (its spec now declares standby-leader)")


def _leads(pair: Pair) -> bool:
    lead = holder(pair.read(pair.to))
    return lead is not None and lead.role == "leader"


def fence_after(pair: Pair, timeout: float, confirm: Callable[[str], None] | None = None) -> bool:
    """The target already leads: fence the old site if its API answers (False if it does not). `confirm`:
    asked before its DCS config is rewritten, unless the operator already agreed to this run's changes."""
    old, to = pair.other, pair.to
    state = read_old(pair)
    if state is None:
        return False
    promotion = (pair.read(to).records.promotion or {}).get("id")
    if state.dcs_role == "standby-leader" and (state.records.fence or {}).get("promotion") == promotion:
        pair.log(f"   {old.environment} already follows {to.environment}")
        return True
    if confirm is not None and state.dcs_role != "standby-leader":
        confirm(f"{to.environment} already leads: fence {old.environment} (standby_cluster -> {to.environment})?")
    pair.log(f"   fencing {old.environment}: its DCS config gets standby_cluster -> {to.environment}")
    pair.demote(old, state, timeout, leader=to, promotion=promotion)
    pair.log(f"   {old.environment} fenced: its DCS config now follows {to.environment}")
    return True


def dry_run(pair: Pair) -> str:
    return runbook(f"Failover to {pair.to.environment} (unplanned: {pair.other.environment} failed)", steps(pair))

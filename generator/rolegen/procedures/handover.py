"""The handover: demote the leader site, wait for the LSN gate, move the witness Lease (when the specs declare one:
rolegen.procedures.witness_step), promote the other, verify, record the roles. Never promote before the gate. What
a switchover runs after its preflight, and a failback after its repair: one runbook each, one numbering.

Resumable: the phase is read from the live DCS configs, so a run killed at any step continues safely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rolegen.cluster.site_state import SiteState
from rolegen.errors import RolegenError
from rolegen.procedures import dependent_steps, witness_step
from rolegen.procedures.base import Pair, follows, record_roles, status_line
from rolegen.procedures.handover_gate import gate as _gate
from rolegen.procedures.handover_gate import roll_back as _roll_back
from rolegen.procedures.rules import (
    holder,
    lsn_text,
    site_timeline,
)
from rolegen.procedures.steps import Later, Step
from rolegen.procedures.switchover_checks import preflight, prove_leading, resume_checks, within_lag
from rolegen.procedures.wake import Nudger
from rolegen.witness.move import WitnessNotMoved


def steps(pair: Pair, verb: str = "switchover") -> list[Step[Handover]]:
    """From the demotion to the recorded roles: what a switchover runs after its preflight, and a failback after
    its repair (`verb`: which of the two, for the hooks and the command that resumes). The applications' steps
    (rolegen.procedures.dependent_steps) are there only when the specs declare dependents or hooks."""
    to, old = pair.to.environment, pair.other.environment
    rerun = f"rolegen {verb} --to {to}"
    return [
        *dependent_steps.hook(pair, verb, "before_demote", _starting),
        *dependent_steps.quiesce(pair, pair.other, _not_promoted, stopped=f"nothing was demoted: {old} still leads",
                                 rerun=rerun),
        Step(
            f"Demote {old}",
            f"Add standby_cluster -> {pair.other.peer.host}:{pair.other.peer.port} to {old}'s "
            f"{pair.other.config_map} `config` annotation\n(read-modify-write with its resourceVersion). Patroni "
            f"fast-stops the primary; {to}, still connected,\nreceives everything up to the shutdown checkpoint. "
            f"First, {to} stops naming its DR slot (a demoted site\nkeeps none) until it is promoted.",
            _demote,
            _not_promoted,
        ),
        *dependent_steps.hook(pair, verb, "after_demote", _not_promoted),
        Step(
            "Wait for the LSN gate",
            f"Until {old} reports standby-leader and {to} has replayed at least {old}'s final LSN\n"
            f"({pair.other.leader_map} `optime`) on the same timeline. Nothing accepts writes meanwhile.\n"
            f"If the gate is not reached within --timeout, {old} is promoted back and the run fails.",
            _wait_for_gate,
            _not_promoted,
        ),
        *witness_step.steps(pair, _move_witness, _not_promoted, unmoved=f"{old} is promoted back and the run fails"),
        *dependent_steps.hook(pair, verb, "before_promote", _not_promoted),
        Step(
            f"Promote {to}",
            f"Remove standby_cluster from {to}'s {pair.to.config_map} `config` annotation. Only after the gate.",
            _promote,
            _not_promoted,
        ),
        *_verify_steps(pair, verb, rerun),
        Step(
            "Record the new roles",
            f"rolegen render --env {old} --role standby-leader, then --env {to} --role leader:\n"
            "specs and generated files change, so Git records the switchover.",
            _record,
        ),
    ]


@dataclass
class SwitchoverResult:
    to: str
    old: str
    final_lsn: int | None = None
    timeline: int | None = None
    resumed: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def phase(old: SiteState, target: SiteState) -> str:
    """Where a switchover stands, from the two live DCS configs alone (so a killed run resumes):
    `start` (old leads), `demoted` (both standby: between demotion and promotion), `promoted` (target leads),
    or `split` (both declare leader: not a switchover's state)."""
    return {
        ("leader", "standby-leader"): "start",
        ("standby-leader", "standby-leader"): "demoted",
        ("standby-leader", "leader"): "promoted",
        ("leader", "leader"): "split",
    }.get((old.dcs_role or "", target.dcs_role or ""), "unknown")


@dataclass
class Handover:
    """One handover: its options, the phase it started in, and what each step read or wrote for the next."""

    pair: Pair
    confirm: Callable[[str], None]
    timeout: float
    result: SwitchoverResult
    where: str  # phase() of the first read
    old_state: SiteState
    target_state: SiteState
    before: Later[SiteState] = field(default_factory=lambda: Later("the old site as read before its demotion"))
    nudger: Later[Nudger] = field(default_factory=lambda: Later("the nudger started with the demotion"))
    promotion: str | None = None


def begin(pair: Pair, confirm: Callable[[str], None], timeout: float) -> Handover | None:
    """Read both sites and the phase a handover starts from; None when the target already leads (nothing to do).
    A split or unknown phase is refused: not a state a handover starts from."""
    to, old = pair.to, pair.other
    target_state, old_state = pair.read_both()
    for state in (target_state, old_state):
        if state.config is None:
            raise RolegenError(f"{state.environment}: no `config` annotation on {to.config_map}", hint="rolegen apply")
    where = phase(old_state, target_state)
    if where in ("split", "unknown"):
        raise RolegenError(
            f"{old.environment} declares {old_state.dcs_role} and {to.environment} {target_state.dcs_role} in their "
            "DCS config: not a state a switchover starts from",
            hint="a split brain is suspected: run rolegen status, then rolegen failback",
        )
    if where == "promoted" and old_state.live_role != "leader" and to.role == "leader":
        pair.log(f"Not changed: {to.environment} is already leader")
        return None
    return Handover(pair, confirm, timeout, SwitchoverResult(to.environment, old.environment), where, old_state,
                    target_state)


def _starting(run: Handover) -> bool:
    """Nothing demoted yet (a run resumed after the demotion already ran what precedes it)."""
    return run.where == "start"


def _always(_: Handover) -> bool:
    return True


def _not_promoted(run: Handover) -> bool:
    """Demotion, gate and promotion are still to do (a run that resumes after the promotion only verifies)."""
    return run.where in ("start", "demoted")


def check(run: Handover) -> None:
    """The switchover's preflight (or, for a resumed run, the resume checks), the question, and the proof that
    the old site leads."""
    pair, to, old, log = run.pair, run.pair.to, run.pair.other, run.pair.log
    log(f"   {status_line(run.old_state)}\n   {status_line(run.target_state)}")
    if run.where == "start":
        preflight(pair, run.old_state, run.target_state)
        run.confirm(f"Switch over from {old.environment} to {to.environment}?")
        run.old_state = prove_leading(pair, run.old_state)
        run.old_state, run.target_state = within_lag(pair, run.old_state, run.target_state)
    else:
        run.result.resumed = "after demotion" if run.where == "demoted" else "after promotion"
        log(f"   resuming {run.result.resumed}: {old.environment} is already demoted")
        if run.where == "demoted":
            resume_checks(pair, run.old_state, run.target_state)
        run.confirm(f"Continue the switchover from {old.environment} to {to.environment}?")


def _demote(run: Handover) -> None:
    pair, to, old = run.pair, run.pair.to, run.pair.other
    run.target_state = pair.unslot(run.target_state)
    # The promotion is recorded before the demotion, so that the fence record carries its id at once and
    # nothing but the gate stands between the demotion and the promotion.
    run.promotion = _promotion(pair, run.old_state, run.target_state)
    run.before.set(run.old_state)
    # The target's Patroni reports its replay position once per loop_wait unless woken: keep its report
    # fresh while the old site demotes, so the gate passes on the first read after the demotion.
    nudger = run.nudger.set(Nudger(pair.cluster(to), to))
    nudger.seen(run.target_state)
    with nudger.running():
        run.old_state = pair.demote(old, run.old_state, run.timeout, leader=to, promotion=run.promotion,
                                  defer_record=True)
    pair.mark("demoted")


def _wait_for_gate(run: Handover) -> None:
    pair, result = run.pair, run.result
    final, run.target_state = _gate(pair, run.old_state, run.timeout, run.before.get(), run.nudger.get())
    pair.fence_recorded()  # the evidence of the fence is on record before the promotion
    result.final_lsn, result.timeline = final.lsn, final.timeline
    pair.note(lsn=final.lsn, timeline=final.timeline)
    pair.mark("gate")
    pair.log(f"   {pair.to.environment} replayed {pair.other.environment}'s final LSN {lsn_text(final.lsn)}, "
             f"tl {final.timeline}")


def _move_witness(run: Handover) -> None:
    pair, to = run.pair, run.pair.to.environment
    try:
        witness_step.move(pair, run.timeout)
    except WitnessNotMoved as exc:  # mode automatic: the target's pre_promote would refuse its promotion
        _roll_back(pair, f"{exc.message}: {to}'s guard would refuse its promotion (mode automatic)",
                   "witness lease not moved", exc.hint or "check the route to the witness (rolegen status), then retry")


def _promote(run: Handover) -> None:
    run.pair.write_role(run.pair.to, "leader", run.target_state)
    run.pair.mark("promote_written")


def _verify_steps(pair: Pair, verb: str, rerun: str) -> list[Step[Handover]]:
    """Verify; with applications to bring up, in two: the new leader's come up as soon as it leads, while the old
    site may still be rewinding (their unavailable window does not wait for it)."""
    to, old = pair.to.environment, pair.other.environment
    up = [*dependent_steps.bring_up(pair, _always, rerun=rerun),
          *dependent_steps.hook(pair, verb, "after_promote", _always)]
    if not up:
        return [Step("Verify", f"{to} reports leader on a new timeline; {old} reports standby-leader following it.",
                     _verify)]
    return [Step(f"Verify {to} leads", f"{to} reports leader on a new timeline.", _verify_leads), *up,
            Step(f"Verify {old} follows", f"{old} reports standby-leader following {to}.", _verify_follows)]


def _verify(run: Handover) -> None:
    _verify_leads(run)
    _verify_follows(run)


def _verify_leads(run: Handover) -> None:
    pair, to = run.pair, run.pair.to
    timeline = run.result.timeline or 0
    pair.wait(f"{to.environment} to report leader", lambda: _leads(pair, timeline), run.timeout)
    pair.mark("promoted")
    pair.settle_promotion()


def _verify_follows(run: Handover) -> None:
    pair, old = run.pair, run.pair.other
    pair.wait(f"{old.environment} to follow as standby-leader", lambda: _follows(pair), run.timeout,
              hint=f"{pair.to.environment} leads; {old.environment} is fenced (its DCS config follows "
              f"{pair.to.environment}) but has not reported streaming: its members may be down or still "
              f"rewinding. They follow when they run; rolegen status shows them")
    pair.mark("verified")


def _record(run: Handover) -> None:
    record_roles(run.pair, leader=run.pair.to, standby=run.pair.other)


def _promotion(pair: Pair, old_state: SiteState, target_state: SiteState) -> str:
    """The id of this switchover's promotion: a killed run's record is reused, else a new one is written on the
    target. The timeline it leaves is the old site's (settle_promotion corrects it once the target leads)."""
    recorded = target_state.records.promotion or {}
    if recorded.get("from") == pair.other.environment and "timeline" not in recorded and recorded.get("id"):
        return str(recorded["id"])
    lead = holder(old_state)
    lsn = old_state.optime if old_state.optime is not None else (lead.lsn if lead else None)
    return pair.record_promotion(target_state, timeline_before=site_timeline(old_state), fenced_first=True, lsn=lsn,
                                 link=False)


def _leads(pair: Pair, old_timeline: int) -> bool:
    member = pair.read(pair.to).leader_member
    return member is not None and member.role == "leader" and (member.timeline or 0) > old_timeline


def _follows(pair: Pair) -> bool:
    target_state, old_state = pair.read_both()
    return follows(old_state, target_state)

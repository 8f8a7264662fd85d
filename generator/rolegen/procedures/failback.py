"""Failback after an unplanned failover: bring the old site back as a standby of the current leader — with
pg_rewind, no wipe — or, when rewind cannot work, re-seed it; then hand over back to it (the switchover's
handover: rolegen.procedures.handover), in one runbook with one numbering."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rolegen.cluster.health import MAX_LAG_BYTES
from rolegen.cluster.site_state import SiteState
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.procedures import dependent_steps, handover
from rolegen.procedures.base import Pair, status_line
from rolegen.procedures.divergence import divergence
from rolegen.procedures.failback_bytes import Prediction, predict
from rolegen.procedures.handover import Handover
from rolegen.procedures.repair import Chosen, Method, plan
from rolegen.procedures.steps import Later, Step, execute, runbook, within
from rolegen.procedures.switchover_checks import caught_up, pause_problems
from rolegen.procedures.wipe import detail, replicas, reseed_site, streaming


def steps(pair: Pair) -> list[Step[_Run]]:
    back, cur = pair.to, pair.other
    return [
        Step(
            "Preflight",
            f"{cur.environment} reports leader; {back.environment}'s API answers. {back.environment} is DIVERGED when "
            f"its data went past\nthe point where {cur.environment}'s timeline began (both `history` annotations, "
            "the members' timelines and LSNs,\nrolegen's promotion and fence records). pg_rewind repairs a "
            "divergence on an older timeline; re-seed is\nchosen when the system id differs, a timeline number "
            f"was used on both sites, or {back.environment} went further.\nWhat each repair would move over the link "
            "is predicted from the members' published figures (a rewind: the\nsource's pg_wal and the blocks "
            f"{back.environment} changed since its last checkpoint; a re-seed: the databases); --method auto\n"
            f"re-seeds when a rewind would move at least as much.\nA run that finds {cur.environment} "
            "already demoted (an earlier run's switch back under way) skips the repair\nand resumes the switch back.",
            _check,
        ),
        Step(
            f"Fence {back.environment}",
            f"Its {back.config_map} `config` gets standby_cluster -> {back.peer.host}:{back.peer.port} (if "
            "failover could not write it);\nwait until no member may accept writes, and record what each held. A "
            "member still running as primary\nis demoted: its writes since the failover are discarded by the "
            "repair.",
            _fence,
            _repairing,
        ),
        *dependent_steps.quiesce(pair, back, _repairing, stopped=f"{back.environment} is fenced; nothing was repaired",
                                 rerun=f"rolegen failback --to {back.environment}"),
        Step(
            "Rewind",
            f"Members of {back.environment} start with their data: Patroni does crash recovery, then pg_rewind "
            f"from\n{cur.environment}, then runs as standby leader. Wait until it streams on "
            f"{cur.environment}'s timeline.\nWith --method auto, a rewind that does not converge within "
            "--timeout falls back to re-seed.",
            _rewind,
            lambda run: _repairing(run) and run.chosen == "rewind",
            when="method rewind/auto",
        ),
        Step(
            "Re-seed",
            detail(pair),
            _reseed,
            lambda run: _repairing(run) and run.chosen == "reseed",
            when="method reseed, or auto fallback",
        ),
        Step(
            f"Switch over back to {back.environment}: preflight",
            f"Once {back.environment}'s replay lag is within the switchover's bound "
            f"({MAX_LAG_BYTES >> 20} MiB): the switchover's preflight,\n"
            f"then {cur.environment}'s leader lock renewed while watched. The steps after it are the planned "
            "switchover's:\nno acknowledged write lost.",
            _switch_back,
        ),
        *(within(step, _handover) for step in handover.steps(pair, "failback")),
    ]


@dataclass
class FailbackResult:
    to: str
    method: str = ""
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    predicted: dict[str, object] = field(default_factory=dict)  # failback_bytes.Prediction.as_dict(), preflight's


@dataclass
class _Run:
    """One failback run: its options, the method chosen (a rewind that does not converge under `auto` turns
    into a re-seed), and the two sites as the preflight read them."""

    pair: Pair
    method: Method
    confirm: Callable[[str], None]
    timeout: float
    result: FailbackResult
    chosen: Chosen = "rewind"
    leader_state: Later[SiteState] = field(default_factory=lambda: Later("the leading site as the preflight read it"))
    back_state: Later[SiteState] = field(default_factory=lambda: Later("the returning site as the preflight read it"))
    handover: Handover | None = None  # the switch back, once its preflight passed
    resuming: bool = False  # an earlier run's switch back was under way: the repair is done, the switch back resumes


def run(pair: Pair, *, method: Method, confirm: Callable[[str], None], timeout: float = 120) -> FailbackResult:
    result = FailbackResult(pair.to.environment)
    execute(steps(pair), _Run(pair, method, confirm, timeout, result), pair.log)
    result.timings = dict(pair.timings)
    return result


def _check(run: _Run) -> None:
    pair, back, cur, log = run.pair, run.pair.to, run.pair.other, run.pair.log
    leader_state, back_state = pair.read(cur), pair.read(back)
    run.leader_state.set(leader_state)
    run.back_state.set(back_state)
    log(f"   {status_line(leader_state)}\n   {status_line(back_state)}")
    if handover.phase(leader_state, back_state) in ("demoted", "promoted"):
        # cur already demoted: only a switch back does that (this procedure's, or a switchover's) after the
        # repair. Resume it as a switchover resumes, from the live state, with the same checks and gate.
        run.resuming = True
        run.result.reason = "resumed the switch back"
        log(f"   {cur.environment} is already demoted: resuming the switch back")
        run.confirm(f"Continue the switch back from {cur.environment} to {back.environment}?")
        return
    if leader_state.live_role != "leader":
        raise RolegenError(f"{cur.environment} does not report leader", hint="rolegen status")
    held = pause_problems(pair, leader_state, back_state)  # a paused site would act on neither the fence nor the switch
    if held:
        raise RolegenError("preflight failed: " + "; ".join(held), hint="nothing was changed; resume, then re-run")
    if back_state.writable_members:
        names = ", ".join(m.name for m in back_state.writable_members)
        log(f"   SPLIT BRAIN: {back.environment} may accept writes too ({names}); they will be discarded")
    found = divergence(back_state, leader_state)
    if found is not None:
        log(f"   {back.environment} is DIVERGED: {found.reason} (repair: {found.repair})")
    prediction = predict(back_state, leader_state)
    run.result.predicted = prediction.as_dict()
    log("   would move over the link: " + "; ".join(prediction.lines()))
    repair = plan(back_state, leader_state, run.method, prediction)
    run.chosen = repair.method
    run.result.reason = repair.why or (found.reason if found else "")
    log(f"   method: {run.chosen}" + (f" ({repair.why})" if repair.why else ""))
    run.confirm(f"Bring {back.environment} back as a standby of {cur.environment} ({run.chosen}), then switch over "
                "to it?")


def _fence(run: _Run) -> None:
    pair = run.pair
    promotion = (run.leader_state.get().records.promotion or {}).get("id")
    back_state = run.back_state.get()
    if run.chosen == "rewind" or back_state.members:
        pair.demote(pair.to, back_state, run.timeout, leader=pair.other, promotion=promotion)
    pair.mark("fenced")


def _rewind(run: _Run) -> None:
    pair, back, cur = run.pair, run.pair.to, run.pair.other
    try:
        _ensure_scaled(pair)
        pair.wait(f"{back.environment} to stream from {cur.environment}", lambda: streaming(pair), run.timeout)
    except WaitTimedOut as exc:  # only a rewind that ran out of time falls back; any other error stops here
        if run.method != "auto":
            raise
        pair.log(f"   rewind did not converge ({exc.message}): re-seeding")
        run.chosen = "reseed"


def _switch_back(run: _Run) -> None:
    pair, back, cur = run.pair, run.pair.to, run.pair.other
    run.result.method = "" if run.resuming else run.chosen  # resumed: this run repaired nothing
    pair.mark("standby")
    if not run.resuming:  # resumed: cur no longer leads; the handover's resume checks and gate decide
        pair.wait(f"{back.environment} to catch up with {cur.environment}", lambda: caught_up(pair), run.timeout)
    run.handover = handover.begin(pair, lambda _: None, run.timeout)  # the operator agreed in the preflight
    if run.handover is not None:
        handover.check(run.handover)


def _repairing(run: _Run) -> bool:
    return not run.resuming


def _handover(run: _Run) -> Handover | None:
    return run.handover


def _ensure_scaled(pair: Pair) -> None:
    sts = pair.cluster(pair.to).get("statefulset", pair.to.release)
    if sts is not None and int(sts["spec"].get("replicas") or 0) == 0:
        pair.cluster(pair.to).scale("statefulset", pair.to.release, replicas(pair))


def _reseed(run: _Run) -> None:
    reseed_site(run.pair, run.timeout, system_id=run.leader_state.get().initialize,
                rerun=f"rolegen failback --to {run.pair.to.environment} --method reseed")
    run.pair.mark("streaming")  # re-seeded (its Event: Reseeded), as rolegen reseed marks it


def dry_run(pair: Pair) -> str:
    return runbook(f"Failback to {pair.to.environment}", steps(pair))


def prediction(pair: Pair) -> Prediction:
    """What a rewind and a re-seed would move now (`--dry-run`): one read of each site."""
    return predict(pair.read(pair.to), pair.read(pair.other))

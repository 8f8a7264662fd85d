"""Planned switchover: demote first, wait for the LSN gate, then promote. Never the other way round.

Resumable: the phase is read from the live DCS configs, so a run killed at any step continues safely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rolegen.commands.render import RenderOptions, StaleOutput
from rolegen.commands.render import run as render
from rolegen.errors import RolegenError
from rolegen.live import SiteState
from rolegen.procedures.base import Pair, Step, follows, runbook, status_line

MAX_LAG_BYTES = 16 * 1024 * 1024


def steps(pair: Pair) -> list[Step]:
    to, old = pair.to.environment, pair.other.environment
    return [
        Step(
            "Preflight",
            f"{old} reports leader; {to} reports standby-leader, streaming, replay lag <= {MAX_LAG_BYTES >> 20} MiB;\n"
            f"both sites show the same system id (`initialize`); generated files are up to date and the live\n"
            f"DCS roles match the specs (no pending apply). A run that finds {old} already demoted resumes.",
        ),
        Step(
            f"Demote {old}",
            f"Add standby_cluster -> {pair.other.peer.host}:{pair.other.peer.port} to {old}'s "
            f"{pair.other.config_map} `config` annotation\n(read-modify-write with its resourceVersion). Patroni "
            f"fast-stops the primary; {to}, still connected,\nreceives everything up to the shutdown checkpoint.",
        ),
        Step(
            "Wait for the LSN gate",
            f"Until {old} reports standby-leader and {to} has replayed at least {old}'s final LSN\n"
            f"({pair.other.leader_map} `optime`) on the same timeline. Nothing accepts writes meanwhile.\n"
            f"If the gate is not reached within --timeout, {old} is promoted back and the run fails.",
        ),
        Step(
            f"Promote {to}",
            f"Remove standby_cluster from {to}'s {pair.to.config_map} `config` annotation. Only after the gate.",
        ),
        Step("Verify", f"{to} reports leader on a new timeline; {old} reports standby-leader following it."),
        Step(
            "Record the new roles",
            f"rolegen render --env {old} --role standby-leader, then --env {to} --role leader:\n"
            "specs and generated files change, so Git records the switchover.",
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


def run(pair: Pair, *, confirm: Callable[[str], None], timeout: float = 60) -> SwitchoverResult:
    to, old = pair.to, pair.other
    log = pair.log
    result = SwitchoverResult(to.environment, old.environment)
    total = len(steps(pair))
    t_state, o_state = pair.read_both()
    for state in (t_state, o_state):
        if state.config is None:
            raise RolegenError(f"{state.environment}: no `config` annotation on {to.config_map}", hint="rolegen apply")
    phase = (o_state.dcs_role, t_state.dcs_role)
    if phase == ("leader", "leader"):
        raise RolegenError(
            f"both {old.environment} and {to.environment} declare leader in their DCS config",
            hint="a split brain is suspected: run rolegen status and failback, not switchover",
        )
    if phase == ("standby-leader", "leader") and o_state.live_role != "leader" and to.role == "leader":
        log(f"Not changed: {to.environment} is already leader")
        return result
    log(f"[1/{total}] Preflight")
    log(f"   {status_line(o_state)}\n   {status_line(t_state)}")
    if phase == ("leader", "standby-leader"):
        _preflight(pair, o_state, t_state)
        confirm(f"Switch over from {old.environment} to {to.environment}?")
        log(f"[2/{total}] Demote {old.environment}")
        pair.write_role(old, "standby-leader", o_state)
        pair.mark("demoted")
    else:
        result.resumed = "after demotion" if phase == ("standby-leader", "standby-leader") else "after promotion"
        log(f"   resuming {result.resumed}: {old.environment} is already demoted")
        confirm(f"Continue the switchover from {old.environment} to {to.environment}?")
    if phase != ("standby-leader", "leader"):
        log(f"[3/{total}] Wait for the LSN gate")
        result.final_lsn, result.timeline = _gate(pair, timeout)
        pair.mark("gate")
        log(f"   {to.environment} replayed final LSN {result.final_lsn} of {old.environment}, tl {result.timeline}")
        log(f"[4/{total}] Promote {to.environment}")
        pair.write_role(to, "leader", pair.read(to))
        pair.mark("promote_written")
    log(f"[5/{total}] Verify")
    timeline = result.timeline or 0
    pair.wait(f"{to.environment} to report leader", lambda: _leads(pair, timeline), timeout)
    pair.mark("promoted")
    pair.wait(f"{old.environment} to follow as standby-leader", lambda: _follows(pair), timeout)
    pair.mark("verified")
    log(f"[6/{total}] Record the new roles")
    for env, role in ((old.environment, "standby-leader"), (to.environment, "leader")):
        rendered = render(pair.env_dir, RenderOptions(envs=[env], role=role))
        for change in rendered.changes:
            if change.status != "identical":
                log(f"   {change.status:9} {change.display}")
    result.timings = dict(pair.timings)
    return result


def _preflight(pair: Pair, o_state: SiteState, t_state: SiteState) -> None:
    to, old = pair.to, pair.other
    problems = []
    if o_state.live_role != "leader":
        problems.append(f"{old.environment} does not report leader (reports {o_state.live_role})")
    member = t_state.leader_member
    if t_state.live_role != "standby-leader" or member is None:
        problems.append(f"{to.environment} does not report standby-leader (reports {t_state.live_role})")
    elif member.state != "streaming":
        problems.append(f"{to.environment}'s standby leader is {member.state}, not streaming from {old.environment}")
    if not o_state.initialize or o_state.initialize != t_state.initialize:
        problems.append(
            f"system ids differ: {old.environment} {o_state.initialize}, {to.environment} {t_state.initialize}"
        )
    leader = o_state.leader_member
    if member and leader and member.replay_lsn is not None and leader.lsn is not None:
        lag = leader.lsn - member.replay_lsn
        if lag > MAX_LAG_BYTES:
            problems.append(f"{to.environment} lags {lag} bytes behind (bound {MAX_LAG_BYTES})")
    if (old.role, to.role) != ("leader", "standby-leader"):
        problems.append(f"the specs declare {old.environment}={old.role}, {to.environment}={to.role}")
    for spec in (to, old):
        try:
            render(pair.env_dir, RenderOptions(envs=[spec.environment], check=True))
        except StaleOutput:
            problems.append(
                f"generated files of {spec.environment} are stale (rolegen render --env {spec.environment})"
            )
    if problems:
        raise RolegenError("preflight failed: " + "; ".join(problems), hint="nothing was changed; rolegen status")


def _gate(pair: Pair, timeout: float) -> tuple[int, int]:
    """Wait until the target replayed the demoted site's final LSN on the same timeline; roll back on timeout."""
    seen: dict[str, int] = {}

    def reached() -> bool:
        t_state, o_state = pair.read_both()
        demoted, target = o_state.leader_member, t_state.leader_member
        if o_state.live_role != "standby-leader" or demoted is None or target is None or o_state.optime is None:
            return False
        seen.update(final=o_state.optime, timeline=demoted.timeline or 0)
        replayed = target.replay_lsn or 0
        # A standby leader whose walreceiver is idle reports the timeline of its last restartpoint, which lags
        # after a timeline switch; only a target on a *later* timeline than the demoted leader has diverged.
        return replayed >= o_state.optime and (target.timeline or 0) <= (demoted.timeline or 0)

    try:
        pair.wait(f"{pair.to.environment} to replay {pair.other.environment}'s final LSN", reached, timeout)
    except RolegenError:
        pair.log(f"   gate not reached: promoting {pair.other.environment} back")
        pair.write_role(pair.other, "leader", pair.read(pair.other))
        raise RolegenError(
            f"{pair.to.environment} did not replay {pair.other.environment}'s final LSN within {timeout:.0f}s; "
            f"{pair.other.environment} was promoted back",
            hint="check replication (rolegen status) and retry",
        ) from None
    return seen["final"], seen["timeline"]


def _leads(pair: Pair, old_timeline: int) -> bool:
    member = pair.read(pair.to).leader_member
    return member is not None and member.role == "leader" and (member.timeline or 0) > old_timeline


def _follows(pair: Pair) -> bool:
    t_state, o_state = pair.read_both()
    return follows(o_state, t_state)


def dry_run(pair: Pair) -> str:
    return runbook(f"Switchover to {pair.to.environment} (planned, zero acknowledged writes lost)", steps(pair))

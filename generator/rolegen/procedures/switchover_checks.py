"""What a switchover checks before it changes anything (and a resumed run before it goes on): both sites in the
roles the specs declare, the target streaming within the lag bound, one system id, a timeline to gate on, no
divergence, generated files current; the old leader's lock renewed while watched (a dead site's last reports are
no proof it can hand over its last writes); neither site paused (Patroni would act on neither the demotion nor the
promotion: the old site would keep running as primary under a standby config). A DR slot missing from a live
config is no reason to refuse: the switchover itself unslots the target first (a run killed right after that
leaves it so) and writes both roles' configs whole, slots included."""

from __future__ import annotations

from rolegen.cluster import health
from rolegen.cluster.health import MAX_LAG_BYTES, lag_over_bound, not_streaming, system_ids_differ
from rolegen.cluster.site_checks import paused
from rolegen.cluster.site_state import SiteState
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.offline.generated import StaleOutput, check_current
from rolegen.procedures.base import Pair
from rolegen.procedures.divergence import divergence
from rolegen.procedures.rules import holder
from rolegen.procedures.wake import Nudger

LAG_TIMEOUT = 10.0  # seconds for fresh reports to show the target within the lag bound


def preflight(pair: Pair, old_state: SiteState, target_state: SiteState) -> None:
    to, old = pair.to, pair.other
    problems = []
    if old_state.live_role != "leader":
        problems.append(f"{old.environment} does not report leader (reports {old_state.live_role})")
    member = target_state.leader_member
    if target_state.live_role != "standby-leader" or member is None:
        problems.append(f"{to.environment} does not report standby-leader (reports {target_state.live_role})")
    elif not_streaming(target_state):
        problems.append(f"{to.environment}'s standby leader is {member.state}, not streaming from {old.environment}")
    if (old.role, to.role) != ("leader", "standby-leader"):
        problems.append(f"the specs declare {old.environment}={old.role}, {to.environment}={to.role}")
    problems += pause_problems(pair, old_state, target_state)
    problems += _shared_problems(pair, old_state, target_state)
    for spec in (to, old):
        try:
            check_current(pair.env_dir, [spec.environment])
        except StaleOutput:
            problems.append(
                f"generated files of {spec.environment} are stale (rolegen render --env {spec.environment})"
            )
    if problems:
        raise RolegenError("preflight failed: " + "; ".join(problems), hint="nothing was changed; rolegen status")


def prove_leading(pair: Pair, old_state: SiteState) -> SiteState:
    """Right before the demotion, the old site's leader lock renewed while watched (Patroni rewrites it every
    loop_wait) by a holder that still reports leader. Its Pods' reports alone may be the last words of a site that
    died: a switchover from a dead leader would gate on a position it reported before its last acknowledged
    commits, a failover's loss under a planned move's promise. A failed read stops here, as it is.

    The old site's Patroni is woken (rolegen.procedures.wake: its config rewritten with the same JSON) so that a
    live leader renews now rather than after up to loop_wait (10 s in the bundled specs): waking proves nothing by
    itself, a dead or hung Patroni renews no lock however it is called."""
    old, to = pair.other, pair.to
    first, last = old_state.leader_version, [old_state]
    nudger = Nudger(pair.cluster(old), old)
    nudger.seen(old_state)

    def renewed() -> bool:
        nudger.maybe()
        last[0] = pair.read(old)
        if nudger.version is None:
            nudger.seen(last[0])  # a config changed meanwhile is never rewritten: wake from what was read
        return last[0].leader_version != first and last[0].live_role == "leader"

    try:
        pair.wait(f"{old.environment} to renew its leader lock (proof it leads, before the demotion)", renewed,
                  max(old_state.ttl, 1.0), every=0.2)
    except WaitTimedOut:
        raise RolegenError(
            f"preflight failed: {old.environment}'s leader did not renew its lock within its ttl "
            f"({old_state.ttl:g} s): nothing proves it is alive to hand over its last writes",
            hint=f"nothing was changed; rolegen status. If {old.environment} is down, this is a failover: "
            f"rolegen failover --to {to.environment}",
        ) from None
    return last[0]


def within_lag(pair: Pair, old_state: SiteState, target_state: SiteState,
               timeout: float = LAG_TIMEOUT) -> tuple[SiteState, SiteState]:
    """Right after the old leader's proof, the target replays within MAX_LAG_BYTES of it; returns (old, target)
    as last read. Each Patroni publishes its position once per loop_wait (10 s in the bundled specs), so under
    load the standby's report may trail the leader's by a loop's WAL: a lag over the bound in two reports read
    apart is no verdict. Both are woken (rolegen.procedures.wake) and read again until the lag is within the
    bound; still over it after `timeout` with fresh reports, the switchover refuses (nothing written yet)."""
    if lag_over_bound(target_state, old_state) is None:
        return old_state, target_state
    to, old = pair.to, pair.other
    nudgers = (Nudger(pair.cluster(old), old), Nudger(pair.cluster(to), to))
    last = [old_state, target_state]

    def caught_up() -> bool:
        for nudger, state in zip(nudgers, last, strict=True):
            if nudger.version is None:
                nudger.seen(state)  # a config changed meanwhile is never rewritten: wake from what was read
            nudger.maybe()
        last[1], last[0] = pair.read_both()
        return lag_over_bound(last[1], last[0]) is None

    for nudger, state in zip(nudgers, last, strict=True):
        nudger.seen(state)
    try:
        pair.wait(f"fresh reports of both sites: {to.environment} within {MAX_LAG_BYTES >> 20} MiB of "
                  f"{old.environment}", caught_up, timeout, every=0.2)
    except WaitTimedOut:
        raise RolegenError(
            f"preflight failed: {to.environment} lags {lag_over_bound(last[1], last[0])} bytes behind (bound "
            f"{MAX_LAG_BYTES}) in both sites' fresh reports",
            hint=f"nothing was changed; the gate would keep writes unavailable while {to.environment} catches up: "
            "retry when the write load is lower (rolegen status shows the lag)") from None
    return last[0], last[1]


def _shared_problems(pair: Pair, old_state: SiteState, target_state: SiteState) -> list[str]:
    """What a fresh and a resumed switchover both refuse: different system ids, a target that reports no
    timeline (nothing to gate on), a target whose data left the old site's history."""
    problems = []
    if not old_state.initialize or not target_state.initialize or system_ids_differ(old_state, target_state):
        problems.append(
            f"system ids differ: {pair.other.environment} {old_state.initialize}, {pair.to.environment} "
            f"{target_state.initialize}"
        )
    lead = holder(target_state)
    if lead is None or lead.timeline is None:
        problems.append(
            f"{pair.to.environment} reports no timeline: nothing proves it follows {pair.other.environment}"
        )
    diverged = divergence(target_state, old_state)
    if diverged is not None:
        problems.append(f"{pair.to.environment} is DIVERGED: {diverged.reason}")
    return problems


def pause_problems(pair: Pair, old_state: SiteState, target_state: SiteState) -> list[str]:
    """A paused site acts on no role change: its Patroni would ignore the demotion (its primary keeps taking
    writes) or the promotion."""
    found = [paused(spec, state) for spec, state in ((pair.other, old_state), (pair.to, target_state))]
    return [f"{f.text}: {f.fix}" for f in found if f is not None]


def resume_checks(pair: Pair, old_state: SiteState, target_state: SiteState) -> None:
    held = pause_problems(pair, old_state, target_state)
    if held:
        raise RolegenError("cannot resume the switchover: " + "; ".join(held),
                           hint="once resumed, re-run the same rolegen switchover: it goes on from the live state")
    problems = _shared_problems(pair, old_state, target_state)
    if problems:
        raise RolegenError("cannot resume the switchover: " + "; ".join(problems),
                           hint="both sites are standbys (no writes): rolegen status, then rolegen failback")


def caught_up(pair: Pair) -> bool:
    """`pair.to` replays within the switchover's lag bound of `pair.other`'s position (a switchover's preflight
    refuses more)."""
    return health.caught_up(*pair.read_both())

"""Unplanned failover: the leader site is gone. Promote its peer, then fence the old site so that it can only
come back as a standby. Fencing is also enforced by the chart's startup guard, so it never depends on
rolegen winning a race against the platform restarting the old site's Pods."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rolegen.commands.render import RenderOptions
from rolegen.commands.render import run as render
from rolegen.errors import RolegenError
from rolegen.kube import ClusterUnreachable
from rolegen.live import SiteState
from rolegen.procedures.base import Pair, Step, runbook, status_line


def steps(pair: Pair) -> list[Step]:
    to, old = pair.to, pair.other
    return [
        Step(
            "Preflight",
            f"{to.environment} reports standby-leader. {old.environment} is unreachable, or reachable with no\n"
            f"member leading (if {old.environment} still leads, this is not a failover: use rolegen switchover).",
        ),
        Step(
            f"Promote {to.environment}",
            f"Remove standby_cluster from {to.environment}'s {to.config_map} `config` annotation; wait until it "
            f"reports leader.\nAcknowledged writes {old.environment} had not yet shipped are lost (asynchronous "
            "replication).",
        ),
        Step(
            f"Fence {old.environment}",
            f"As soon as {old.environment}'s API answers, its {old.config_map} `config` gets standby_cluster -> "
            f"{old.peer.host}:{old.peer.port},\nbefore its members may start: it can only return as a standby. "
            f"If it does not answer, the exact\ncommand to run before {old.environment} comes back is printed; "
            "meanwhile the chart's startup guard refuses\nto let it lead while the tunnel shows a writable peer.",
        ),
        Step(
            "Record the new roles",
            f"rolegen render --env {old.environment} --role standby-leader, then --env {to.environment} --role leader.",
        ),
    ]


@dataclass
class FailoverResult:
    to: str
    old: str
    promoted: bool = False
    fenced: bool = False
    fence_command: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _read_old(pair: Pair) -> SiteState | None:
    try:
        return pair.read(pair.other)
    except ClusterUnreachable:
        return None


def run(pair: Pair, *, confirm: Callable[[str], None], timeout: float = 60) -> FailoverResult:
    to, old, log = pair.to, pair.other, pair.log
    result = FailoverResult(to.environment, old.environment)
    total = len(steps(pair))
    log(f"[1/{total}] Preflight")
    t_state, o_state = pair.read(to), _read_old(pair)
    log(f"   {status_line(t_state)}")
    log(f"   {status_line(o_state)}" if o_state else f"   {old.environment}: API unreachable")
    if o_state is not None and o_state.live_role == "leader" and t_state.dcs_role != "leader":
        raise RolegenError(
            f"{old.environment} holds a live leader lock: refusing an unplanned failover",
            hint=f"for a planned move use rolegen switchover --to {to.environment}; if its members are down, "
            "its lock expires after ttl seconds",
        )
    if t_state.dcs_role == "leader":
        log(f"   {to.environment} already declares leader: promotion done earlier, continuing with fencing")
    else:
        if t_state.live_role != "standby-leader":
            raise RolegenError(
                f"{to.environment} reports {t_state.live_role}, not standby-leader: nothing healthy to promote",
                hint="rolegen status",
            )
        confirm(f"Promote {to.environment} and fence {old.environment}?")
        log(f"[2/{total}] Promote {to.environment}")
        pair.write_role(to, "leader", t_state)
        result.promoted = True
        pair.mark("promote_written")
    pair.wait(f"{to.environment} to report leader", lambda: pair.read(to).live_role == "leader", timeout)
    pair.mark("promoted")
    log(f"[3/{total}] Fence {old.environment}")
    result.fenced = fence(pair)
    if not result.fenced:
        result.fence_command = (
            f"kubectl --context {old.context or '<context>'} -n {old.namespace} patch configmap {old.config_map} "
            f"--type merge --patch-file {pair.env_dir.name}/generated/{old.environment}/patches/{old.config_map}.yaml"
        )
        log(f"   FENCE PENDING: {old.environment}'s API does not answer. Before its members start again run:")
        log(f"     {result.fence_command}")
        log(f"   (or re-run: rolegen failover --to {to.environment} -- it only fences once promoted)")
    log(f"[4/{total}] Record the new roles")
    for env, role in ((old.environment, "standby-leader"), (to.environment, "leader")):
        render(pair.env_dir, RenderOptions(envs=[env], role=role))
    result.timings = dict(pair.timings)
    return result


def fence(pair: Pair) -> bool:
    """Make the old site's DCS config a standby of the target; False if its API does not answer."""
    old = pair.other
    try:
        state = pair.read(old)
        if state.config is None:
            raise RolegenError(f"{old.environment}: no `config` annotation to fence", hint="rolegen apply")
        if state.dcs_role != "standby-leader":
            pair.write_role(old, "standby-leader", state)
            pair.log(f"   {old.environment} fenced: its DCS config now follows {pair.to.environment}")
        else:
            pair.log(f"   {old.environment} already follows {pair.to.environment}")
    except ClusterUnreachable:
        return False
    return True


def dry_run(pair: Pair) -> str:
    return runbook(f"Failover to {pair.to.environment} (unplanned: {pair.other.environment} is down)", steps(pair))

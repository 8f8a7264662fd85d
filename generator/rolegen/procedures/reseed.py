"""Re-seed a standby site in place, roles unchanged: what a lost DR slot needs (the standby lagged beyond
max_slot_wal_keep_size and the leader removed WAL it still needs: README "DR link"). The site is wiped and cloned
again from its peer, which keeps leading and taking writes throughout; nothing is promoted or demoted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rolegen.cluster.site_state import SiteState
from rolegen.errors import RolegenError
from rolegen.procedures.base import Pair, status_line
from rolegen.procedures.steps import Later, Step, execute, runbook
from rolegen.procedures.switchover_checks import caught_up
from rolegen.procedures.wipe import detail, reseed_site


def steps(pair: Pair) -> list[Step[_Run]]:
    site, leader = pair.to, pair.other
    return [
        Step("Preflight", f"{leader.environment} reports leader; {site.environment}'s spec and DCS config declare "
             f"standby-leader\n(re-seeding never changes a role: to bring back a failed leader, use rolegen "
             "failback).", _check),
        Step(f"Fence {site.environment}", f"Wait until no member of {site.environment} may accept writes (its DCS "
             "config already declares standby).", _fence),
        Step("Re-seed", detail(pair) + f"\n(Through the DR slot, which {leader.environment} keeps.)", _reseed),
        Step("Catch up", f"Until {site.environment}'s replay lag is within the switchover's bound.", _catch_up),
    ]


@dataclass
class ReseedResult:
    env: str
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Run:
    """One re-seed run: its options and the two sites as the preflight read them."""

    pair: Pair
    confirm: Callable[[str], None]
    timeout: float
    standby_state: Later[SiteState] = field(default_factory=lambda: Later("the standby site as the preflight read it"))
    leader_state: Later[SiteState] = field(default_factory=lambda: Later("the leading site as the preflight read it"))


def run(pair: Pair, *, confirm: Callable[[str], None], timeout: float = 300) -> ReseedResult:
    execute(steps(pair), _Run(pair, confirm, timeout), pair.log)
    return ReseedResult(pair.to.environment, dict(pair.timings))


def _check(run: _Run) -> None:
    pair, site, leader, log = run.pair, run.pair.to, run.pair.other, run.pair.log
    standby_state, leader_state = pair.read(site), pair.read(leader)
    run.standby_state.set(standby_state)
    run.leader_state.set(leader_state)
    log(f"   {status_line(leader_state)}\n   {status_line(standby_state)}")
    problems = []
    if leader_state.live_role != "leader":
        problems.append(f"{leader.environment} does not report leader (reports {leader_state.live_role})")
    if site.role != "standby-leader" or standby_state.dcs_role != "standby-leader":
        problems.append(f"{site.environment} is not a declared standby (spec {site.role}, DCS config "
                        f"{standby_state.dcs_role})")
    if problems:
        raise RolegenError("preflight failed: " + "; ".join(problems),
                           hint=f"nothing was changed; a failed leader comes back with rolegen failback --to "
                           f"{site.environment}")
    run.confirm(f"Wipe {site.environment} and clone it again from {leader.environment}?")


def _fence(run: _Run) -> None:
    promotion = (run.leader_state.get().records.promotion or {}).get("id")
    run.pair.demote(run.pair.to, run.standby_state.get(), run.timeout, leader=run.pair.other, promotion=promotion)
    run.pair.mark("fenced")


def _reseed(run: _Run) -> None:
    reseed_site(run.pair, run.timeout, system_id=run.leader_state.get().initialize,
                rerun=f"rolegen reseed --env {run.pair.to.environment}")
    run.pair.mark("streaming")


def _catch_up(run: _Run) -> None:
    pair, site, leader = run.pair, run.pair.to, run.pair.other
    pair.wait(f"{site.environment} to catch up with {leader.environment}", lambda: caught_up(pair), run.timeout)
    pair.mark("caught_up")


def dry_run(pair: Pair) -> str:
    return runbook(f"Re-seed {pair.to.environment} (roles unchanged)", steps(pair))

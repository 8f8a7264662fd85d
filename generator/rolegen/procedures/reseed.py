"""Re-seed a standby site in place, roles unchanged: what a lost DR slot needs (the standby lagged beyond
max_slot_wal_keep_size and the leader removed WAL it still needs: README "DR link"). The site is wiped and cloned
again from its peer, which keeps leading and taking writes throughout; nothing is promoted or demoted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rolegen.errors import RolegenError
from rolegen.procedures.base import Pair, Step, runbook, status_line
from rolegen.procedures.failback import caught_up, reseed_site


def steps(pair: Pair) -> list[Step]:
    site, leader = pair.to, pair.other
    return [
        Step("Preflight", f"{leader.environment} reports leader; {site.environment}'s spec and DCS config declare "
             f"standby-leader\n(re-seeding never changes a role: to bring back a failed leader, use rolegen "
             "failback)."),
        Step(f"Fence {site.environment}", f"Wait until no member of {site.environment} may accept writes (its DCS "
             "config already declares standby)."),
        Step("Re-seed", f"Scale {site.environment}'s StatefulSet to 0, delete its PVCs, clear `initialize`/`history` "
             f"and the {site.leader_map}\nannotations (rolegen render --reseed), scale back up, wait for the clone "
             f"from {leader.environment} to stream\n(through the DR slot, which {leader.environment} keeps)."),
        Step("Catch up", f"Until {site.environment}'s replay lag is within the switchover's bound."),
    ]


@dataclass
class ReseedResult:
    env: str
    timings: dict[str, float] = field(default_factory=dict)


def run(pair: Pair, *, confirm: Callable[[str], None], timeout: float = 300) -> ReseedResult:
    site, leader, log = pair.to, pair.other, pair.log
    total = len(steps(pair))
    log(f"[1/{total}] Preflight")
    s_state, l_state = pair.read(site), pair.read(leader)
    log(f"   {status_line(l_state)}\n   {status_line(s_state)}")
    problems = []
    if l_state.live_role != "leader":
        problems.append(f"{leader.environment} does not report leader (reports {l_state.live_role})")
    if site.role != "standby-leader" or s_state.dcs_role != "standby-leader":
        problems.append(f"{site.environment} is not a declared standby (spec {site.role}, DCS config "
                        f"{s_state.dcs_role})")
    if problems:
        raise RolegenError("preflight failed: " + "; ".join(problems),
                           hint=f"nothing was changed; a failed leader comes back with rolegen failback --to "
                           f"{site.environment}")
    confirm(f"Wipe {site.environment} and clone it again from {leader.environment}?")
    log(f"[2/{total}] Fence {site.environment}")
    promotion = (l_state.records.promotion or {}).get("id")
    pair.demote(site, s_state, timeout, leader=leader, promotion=promotion)
    pair.mark("fenced")
    log(f"[3/{total}] Re-seed")
    reseed_site(pair, timeout)
    pair.mark("streaming")
    log(f"[4/{total}] Catch up")
    pair.wait(f"{site.environment} to catch up with {leader.environment}", lambda: caught_up(pair), timeout)
    pair.mark("caught_up")
    return ReseedResult(site.environment, dict(pair.timings))


def dry_run(pair: Pair) -> str:
    return runbook(f"Re-seed {pair.to.environment} (roles unchanged)", steps(pair))

"""Failback after an unplanned failover: bring the old site back as a standby of the current leader — with
pg_rewind, no wipe — or, when rewind cannot work, re-seed it; then switch over back to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from rolegen.errors import RolegenError
from rolegen.live import SiteState
from rolegen.procedures import switchover
from rolegen.procedures.base import Pair, Step, follows, runbook, status_line
from rolegen.render import reseed_patches

Method = Literal["rewind", "reseed", "auto"]


def steps(pair: Pair) -> list[Step]:
    back, cur = pair.to, pair.other
    return [
        Step(
            "Preflight",
            f"{cur.environment} reports leader; {back.environment}'s API answers. Rewind cannot work (re-seed is "
            f"chosen) when\n{back.environment}'s system id differs, or both sites' `history` show the same "
            "timeline number ending at\ndifferent LSNs (it ran as a primary on a timeline that collides).",
        ),
        Step(
            f"Fence {back.environment}",
            f"Its {back.config_map} `config` gets standby_cluster -> {back.peer.host}:{back.peer.port} (if "
            "failover could not write it).\nA member still running as primary is demoted: its writes since the "
            "failover are discarded by the rewind.",
        ),
        Step(
            "Rewind (method rewind/auto)",
            f"Members of {back.environment} start with their data: Patroni does crash recovery, then pg_rewind "
            f"from\n{cur.environment}, then runs as standby leader. Wait until it streams on "
            f"{cur.environment}'s timeline.\nWith --method auto, a rewind that does not converge within "
            "--timeout falls back to re-seed.",
        ),
        Step(
            "Re-seed (method reseed, or auto fallback)",
            f"Scale {back.environment}'s StatefulSet to 0, delete its PVCs, clear `initialize`/`history` and the "
            f"{back.leader_map}\nannotations (rolegen render --reseed), scale back up, wait for the clone from "
            f"{cur.environment} to stream.",
        ),
        Step(
            f"Switch over back to {back.environment}",
            "The planned switchover (demote, LSN gate, promote, verify, record roles): no acknowledged write lost.",
        ),
    ]


@dataclass
class FailbackResult:
    to: str
    method: str = ""
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def _history(state: SiteState) -> dict[int, int]:
    try:
        entries = json.loads(state.config_annotations.get("history") or "[]")
    except ValueError:
        return {}
    return {int(e[0]): int(e[1]) for e in entries if isinstance(e, list) and len(e) >= 2}


def rewind_blocker(back: SiteState, cur: SiteState) -> str | None:
    """Why pg_rewind cannot bring `back` onto `cur`'s history (None: it can)."""
    if back.initialize and cur.initialize and back.initialize != cur.initialize:
        return f"system ids differ ({back.initialize} vs {cur.initialize})"
    mine, theirs = _history(back), _history(cur)
    for timeline in sorted(set(mine) & set(theirs)):
        if mine[timeline] != theirs[timeline]:
            return (
                f"timeline {timeline} ended at different LSNs on the two sites ({mine[timeline]} vs "
                f"{theirs[timeline]}): the same timeline number was used twice"
            )
    return None


def run(pair: Pair, *, method: Method, confirm: Callable[[str], None], timeout: float = 120) -> FailbackResult:
    back, cur, log = pair.to, pair.other, pair.log
    result = FailbackResult(back.environment)
    total = len(steps(pair))
    log(f"[1/{total}] Preflight")
    c_state, b_state = pair.read(cur), pair.read(back)
    log(f"   {status_line(c_state)}\n   {status_line(b_state)}")
    if c_state.live_role != "leader":
        raise RolegenError(f"{cur.environment} does not report leader", hint="rolegen status")
    if b_state.live_role == "leader" and c_state.live_role == "leader":
        log(f"   SPLIT BRAIN: {back.environment} accepts writes too; they will be discarded")
    blocker = rewind_blocker(b_state, c_state)
    chosen = "reseed" if method == "reseed" or (method == "auto" and blocker) else "rewind"
    if method == "rewind" and blocker:
        raise RolegenError(f"pg_rewind cannot work: {blocker}", hint="use --method reseed (or auto)")
    result.reason = blocker or ""
    log(f"   method: {chosen}" + (f" ({blocker})" if blocker else ""))
    confirm(f"Bring {back.environment} back as a standby of {cur.environment} ({chosen}), then switch over to it?")
    log(f"[2/{total}] Fence {back.environment}")
    if b_state.dcs_role != "standby-leader":
        pair.write_role(back, "standby-leader", b_state)
    pair.mark("fenced")
    if chosen == "rewind":
        log(f"[3/{total}] Rewind")
        try:
            _ensure_scaled(pair)
            pair.wait(f"{back.environment} to stream from {cur.environment}", lambda: _streaming(pair), timeout)
        except RolegenError as exc:
            if method != "auto":
                raise
            log(f"   rewind did not converge ({exc.message}): re-seeding")
            chosen = "reseed"
    if chosen == "reseed":
        log(f"[4/{total}] Re-seed")
        _reseed(pair, timeout)
    result.method = chosen
    pair.mark("standby")
    pair.wait(f"{back.environment} to catch up with {cur.environment}", lambda: _caught_up(pair), timeout)
    log(f"[5/{total}] Switch over back to {back.environment}")
    switchover.run(pair, confirm=lambda _: None, timeout=timeout)
    result.timings = dict(pair.timings)
    return result


def _streaming(pair: Pair) -> bool:
    b_state, c_state = pair.read_both()
    return follows(b_state, c_state, streaming=True)


def _caught_up(pair: Pair) -> bool:
    """Replay lag within the switchover's bound: the switch back's preflight would refuse otherwise."""
    b_state, c_state = pair.read_both()
    mine, theirs = b_state.leader_member, c_state.leader_member
    if mine is None or theirs is None or mine.replay_lsn is None or theirs.lsn is None:
        return False
    return theirs.lsn - mine.replay_lsn <= switchover.MAX_LAG_BYTES


def _replicas(pair: Pair) -> int:
    sts = pair.cluster(pair.to).get("statefulset", pair.to.release)
    if sts is None:
        raise RolegenError(f"{pair.to.environment}: no StatefulSet {pair.to.release}", hint="rolegen apply first")
    declared = int(pair.to.members.get("replicas", 0)) or int(sts["spec"].get("replicas") or 0)
    return max(declared, 1)


def _ensure_scaled(pair: Pair) -> None:
    sts = pair.cluster(pair.to).get("statefulset", pair.to.release)
    if sts is not None and int(sts["spec"].get("replicas") or 0) == 0:
        pair.cluster(pair.to).scale("statefulset", pair.to.release, _replicas(pair))


def _reseed(pair: Pair, timeout: float) -> None:
    back, cluster = pair.to, pair.cluster(pair.to)
    replicas = _replicas(pair)
    cluster.scale("statefulset", back.release, 0)
    pair.wait(f"{back.environment} to stop every member", lambda: not pair.read(back).members, timeout)
    prefix = f"data-{back.release}-"
    for pvc in cluster.list("pvc"):
        name = pvc["metadata"]["name"]
        if name.startswith(prefix) and name.removeprefix(prefix).isdigit():
            cluster.delete("pvc", name)
    for name, patch in reseed_patches(replace(back, role="standby-leader")).items():
        if cluster.get("configmap", name) is not None:
            cluster.merge_patch("configmap", name, patch)
    pair.log(f"   {back.environment} wiped: PVCs deleted, initialize/history/leader cleared; scaling to {replicas}")
    cluster.scale("statefulset", back.release, replicas)
    pair.wait(
        f"{back.environment} to clone and stream from {pair.other.environment}", lambda: _streaming(pair), timeout
    )


def dry_run(pair: Pair) -> str:
    return runbook(f"Failback to {pair.to.environment}", steps(pair))

"""Failback after an unplanned failover: bring the old site back as a standby of the current leader — with
pg_rewind, no wipe — or, when rewind cannot work, re-seed it; then switch over back to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from rolegen.drift import keep_extra
from rolegen.errors import RolegenError
from rolegen.kube import Conflict
from rolegen.live import SiteState
from rolegen.procedures import switchover
from rolegen.procedures.base import Pair, Step, follows, runbook, status_line
from rolegen.procedures.rules import divergence
from rolegen.records import FENCE
from rolegen.render import LEADER_ANNOTATIONS, dcs_config, dumps_json

Method = Literal["rewind", "reseed", "auto"]


def steps(pair: Pair) -> list[Step]:
    back, cur = pair.to, pair.other
    return [
        Step(
            "Preflight",
            f"{cur.environment} reports leader; {back.environment}'s API answers. {back.environment} is DIVERGED when "
            f"its data went past\nthe point where {cur.environment}'s timeline began (both `history` annotations, "
            "the members' timelines and LSNs,\nrolegen's promotion and fence records). pg_rewind repairs a "
            "divergence on an older timeline; re-seed is\nchosen when the system id differs, a timeline number "
            f"was used on both sites, or {back.environment} went further.",
        ),
        Step(
            f"Fence {back.environment}",
            f"Its {back.config_map} `config` gets standby_cluster -> {back.peer.host}:{back.peer.port} (if "
            "failover could not write it);\nwait until no member may accept writes, and record what each held. A "
            "member still running as primary\nis demoted: its writes since the failover are discarded by the "
            "repair.",
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


def rewind_blocker(back: SiteState, cur: SiteState) -> str | None:
    """Why pg_rewind cannot bring `back` onto `cur`'s history (None: it can, or nothing needs repair)."""
    if back.initialize and cur.initialize and back.initialize != cur.initialize:
        return f"system ids differ ({back.initialize} vs {cur.initialize})"
    found = divergence(back, cur)
    return found.reason if found is not None and found.repair == "reseed" else None


def run(pair: Pair, *, method: Method, confirm: Callable[[str], None], timeout: float = 120) -> FailbackResult:
    back, cur, log = pair.to, pair.other, pair.log
    result = FailbackResult(back.environment)
    total = len(steps(pair))
    log(f"[1/{total}] Preflight")
    c_state, b_state = pair.read(cur), pair.read(back)
    log(f"   {status_line(c_state)}\n   {status_line(b_state)}")
    if c_state.live_role != "leader":
        raise RolegenError(f"{cur.environment} does not report leader", hint="rolegen status")
    if b_state.writable_members:
        names = ", ".join(m.name for m in b_state.writable_members)
        log(f"   SPLIT BRAIN: {back.environment} may accept writes too ({names}); they will be discarded")
    found = divergence(b_state, c_state)
    if found is not None:
        log(f"   {back.environment} is DIVERGED: {found.reason} (repair: {found.repair})")
    blocker = rewind_blocker(b_state, c_state)
    chosen = "reseed" if method == "reseed" or (method == "auto" and blocker) else "rewind"
    if method == "rewind" and blocker:
        raise RolegenError(f"pg_rewind cannot work: {blocker}", hint="use --method reseed (or auto)")
    result.reason = blocker or (found.reason if found else "")
    log(f"   method: {chosen}" + (f" ({blocker})" if blocker else ""))
    confirm(f"Bring {back.environment} back as a standby of {cur.environment} ({chosen}), then switch over to it?")
    log(f"[2/{total}] Fence {back.environment}")
    promotion = (c_state.records.promotion or {}).get("id")
    if chosen == "rewind" or b_state.members:
        pair.demote(back, b_state, timeout, leader=cur, promotion=promotion)
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
        reseed_site(pair, timeout)
    result.method = chosen
    pair.mark("standby")
    pair.wait(f"{back.environment} to catch up with {cur.environment}", lambda: caught_up(pair), timeout)
    log(f"[5/{total}] Switch over back to {back.environment}")
    switchover.run(pair, confirm=lambda _: None, timeout=timeout)
    result.timings = dict(pair.timings)
    return result


def _streaming(pair: Pair) -> bool:
    """Following the leader's timeline, streaming, and nothing shows the data left its history."""
    b_state, c_state = pair.read_both()
    return follows(b_state, c_state, streaming=True) and divergence(b_state, c_state) is None


def caught_up(pair: Pair) -> bool:
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


def reseed_site(pair: Pair, timeout: float) -> None:
    back, cluster = pair.to, pair.cluster(pair.to)
    replicas = _replicas(pair)
    pair.guard()
    cluster.scale("statefulset", back.release, 0)
    pair.wait(f"{back.environment} to stop every member", lambda: not pair.read(back).members, timeout)
    prefix = f"data-{back.release}-"
    for pvc in cluster.list("pvc"):
        name = pvc["metadata"]["name"]
        if name.startswith(prefix) and name.removeprefix(prefix).isdigit():
            pair.guard()
            cluster.delete("pvc", name)
    _forget(pair)
    pair.log(f"   {back.environment} wiped: PVCs deleted, initialize/history/leader cleared; scaling to {replicas}")
    pair.guard()
    cluster.scale("statefulset", back.release, replicas)
    pair.wait(
        f"{back.environment} to clone and stream from {pair.other.environment}", lambda: _streaming(pair), timeout
    )


def _forget(pair: Pair) -> None:
    """What Patroni and rolegen remember of the wiped data: `initialize`/`history` (the `config` kept as the
    standby role plus hand-set keys, written against the resourceVersion read), the leader lock; rolegen's
    fence record now says the site was re-seeded (its old data, and any divergence in it, is gone)."""
    back, cluster = pair.to, pair.cluster(pair.to)
    declared = dcs_config(replace(back, role="standby-leader"))
    for attempt in range(5):
        state = pair.read(back)
        if state.config_resource_version is None:
            break
        patch = {"metadata": {"annotations": {
            "config": dumps_json(keep_extra(state.config or {}, declared)), "history": None, "initialize": None,
        }}}
        try:
            pair.guard()
            cluster.merge_patch("configmap", back.config_map, patch, resource_version=state.config_resource_version)
            break
        except Conflict:
            if attempt == 4:
                raise
    if cluster.get("configmap", back.leader_map) is not None:
        cleared = {"metadata": {"annotations": dict.fromkeys(LEADER_ANNOTATIONS)}}
        cluster.merge_patch("configmap", back.leader_map, cleared)
    # A clone of the leader holds nothing of its own: the record says so, tied to the current promotion.
    promotion = (pair.read(pair.other).records.promotion or {}).get("id")
    pair.record(back, FENCE, {"leader": pair.other.environment, "promotion": promotion, "members": {},
                              "max_timeline": None, "writers": [], "reseeded": True})


def dry_run(pair: Pair) -> str:
    return runbook(f"Failback to {pair.to.environment}", steps(pair))

"""Failback after an unplanned failover: bring the old site back as a standby of the current leader — with
pg_rewind, no wipe — or, when rewind cannot work, re-seed it; then switch over back to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.kubectl import Conflict
from rolegen.procedures import switchover
from rolegen.procedures.base import Pair, follows, status_line
from rolegen.procedures.rules import divergence
from rolegen.procedures.steps import Step, execute, runbook
from rolegen.procedures.switchover_checks import MAX_LAG_BYTES, pause_problems
from rolegen.records import FENCE
from rolegen.render import LEADER_ANNOTATIONS, dcs_config, dumps_json
from rolegen.site_diff import keep_extra
from rolegen.site_state import SiteState

Method = Literal["rewind", "reseed", "auto"]  # as asked (--method)
Chosen = Literal["rewind", "reseed"]  # as done


def steps(pair: Pair) -> list[Step[_Run]]:
    back, cur = pair.to, pair.other
    return [
        Step(
            "Preflight",
            f"{cur.environment} reports leader; {back.environment}'s API answers. {back.environment} is DIVERGED when "
            f"its data went past\nthe point where {cur.environment}'s timeline began (both `history` annotations, "
            "the members' timelines and LSNs,\nrolegen's promotion and fence records). pg_rewind repairs a "
            "divergence on an older timeline; re-seed is\nchosen when the system id differs, a timeline number "
            f"was used on both sites, or {back.environment} went further.",
            _check,
        ),
        Step(
            f"Fence {back.environment}",
            f"Its {back.config_map} `config` gets standby_cluster -> {back.peer.host}:{back.peer.port} (if "
            "failover could not write it);\nwait until no member may accept writes, and record what each held. A "
            "member still running as primary\nis demoted: its writes since the failover are discarded by the "
            "repair.",
            _fence,
        ),
        Step(
            "Rewind",
            f"Members of {back.environment} start with their data: Patroni does crash recovery, then pg_rewind "
            f"from\n{cur.environment}, then runs as standby leader. Wait until it streams on "
            f"{cur.environment}'s timeline.\nWith --method auto, a rewind that does not converge within "
            "--timeout falls back to re-seed.",
            _rewind,
            lambda run: run.chosen == "rewind",
            when="method rewind/auto",
        ),
        Step(
            "Re-seed",
            f"Scale {back.environment}'s StatefulSet to 0, delete its PVCs, clear `initialize`/`history` and the "
            f"{back.leader_map}\nannotations (rolegen render --reseed), scale back up, wait for the clone from "
            f"{cur.environment} to stream.",
            lambda run: reseed_site(run.pair, run.timeout),
            lambda run: run.chosen == "reseed",
            when="method reseed, or auto fallback",
        ),
        Step(
            f"Switch over back to {back.environment}",
            f"Once {back.environment}'s replay lag is within the switchover's bound: the planned switchover "
            "(demote,\nLSN gate, promote, verify, record roles): no acknowledged write lost.",
            _switch_back,
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


def choose_method(method: Method, blocker: str | None) -> Chosen:
    """The repair a failback starts with: re-seed when asked, or when `auto` and pg_rewind cannot work
    (`blocker`, from rewind_blocker); rewind otherwise. Asked for a rewind that cannot work: refused."""
    if method == "rewind" and blocker:
        raise RolegenError(f"pg_rewind cannot work: {blocker}", hint="use --method reseed (or auto)")
    return "reseed" if method == "reseed" or (method == "auto" and blocker) else "rewind"


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
    c_state: SiteState | None = None
    b_state: SiteState | None = None


def run(pair: Pair, *, method: Method, confirm: Callable[[str], None], timeout: float = 120) -> FailbackResult:
    result = FailbackResult(pair.to.environment)
    execute(steps(pair), _Run(pair, method, confirm, timeout, result), pair.log)
    result.timings = dict(pair.timings)
    return result


def _check(run: _Run) -> None:
    pair, back, cur, log = run.pair, run.pair.to, run.pair.other, run.pair.log
    c_state, b_state = pair.read(cur), pair.read(back)
    run.c_state, run.b_state = c_state, b_state
    log(f"   {status_line(c_state)}\n   {status_line(b_state)}")
    if c_state.live_role != "leader":
        raise RolegenError(f"{cur.environment} does not report leader", hint="rolegen status")
    held = pause_problems(pair, c_state, b_state)  # a paused site would act on neither the fence nor the switch
    if held:
        raise RolegenError("preflight failed: " + "; ".join(held), hint="nothing was changed; resume, then re-run")
    if b_state.writable_members:
        names = ", ".join(m.name for m in b_state.writable_members)
        log(f"   SPLIT BRAIN: {back.environment} may accept writes too ({names}); they will be discarded")
    found = divergence(b_state, c_state)
    if found is not None:
        log(f"   {back.environment} is DIVERGED: {found.reason} (repair: {found.repair})")
    blocker = rewind_blocker(b_state, c_state)
    run.chosen = choose_method(run.method, blocker)
    run.result.reason = blocker or (found.reason if found else "")
    log(f"   method: {run.chosen}" + (f" ({blocker})" if blocker else ""))
    run.confirm(f"Bring {back.environment} back as a standby of {cur.environment} ({run.chosen}), then switch over "
                "to it?")


def _fence(run: _Run) -> None:
    pair = run.pair
    assert run.c_state is not None and run.b_state is not None
    promotion = (run.c_state.records.promotion or {}).get("id")
    if run.chosen == "rewind" or run.b_state.members:
        pair.demote(pair.to, run.b_state, run.timeout, leader=pair.other, promotion=promotion)
    pair.mark("fenced")


def _rewind(run: _Run) -> None:
    pair, back, cur = run.pair, run.pair.to, run.pair.other
    try:
        _ensure_scaled(pair)
        pair.wait(f"{back.environment} to stream from {cur.environment}", lambda: _streaming(pair), run.timeout)
    except WaitTimedOut as exc:  # only a rewind that ran out of time falls back; any other error stops here
        if run.method != "auto":
            raise
        pair.log(f"   rewind did not converge ({exc.message}): re-seeding")
        run.chosen = "reseed"


def _switch_back(run: _Run) -> None:
    pair, back, cur = run.pair, run.pair.to, run.pair.other
    run.result.method = run.chosen
    pair.mark("standby")
    pair.wait(f"{back.environment} to catch up with {cur.environment}", lambda: caught_up(pair), run.timeout)
    switchover.run(pair, confirm=lambda _: None, timeout=run.timeout)


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
    return theirs.lsn - mine.replay_lsn <= MAX_LAG_BYTES


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

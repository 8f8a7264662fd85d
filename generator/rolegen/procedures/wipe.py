"""Re-seeding a site: wipe its volumes and clone it again from its peer (failback's re-seed, and `rolegen reseed`).

Nothing is deleted without proof, read right before the deletion, that the peer is a live, healthy leader with
the data the preflight saw (wipe_rules.source_blockers); the wiped site starts its members only once its DCS
config makes them standbys of that peer (wipe_rules.standby_config_blockers), and only once its old volumes are
gone (a Terminating PVC would be bound again, old data and all).
"""

from __future__ import annotations

from dataclasses import replace

from rolegen.cluster.dcs_write import Snapshot, config_map_object, write_config
from rolegen.cluster.records import FENCE
from rolegen.cluster.site_state import SiteState
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.offline.render import LEADER_ANNOTATIONS, dcs_config
from rolegen.procedures.base import Pair, follows
from rolegen.procedures.divergence import divergence
from rolegen.procedures.wipe_rules import leader_blockers, source_blockers, standby_config_blockers


def replicas(pair: Pair) -> int:
    """How many members the target runs: its spec's count (what Helm renders), else the StatefulSet's own."""
    sts = pair.cluster(pair.to).get("statefulset", pair.to.release)
    if sts is None:
        raise RolegenError(f"{pair.to.environment}: no StatefulSet {pair.to.release}", hint="rolegen apply first")
    declared = int(pair.to.members.get("replicas", 0)) or int(sts["spec"].get("replicas") or 0)
    return max(declared, 1)


def detail(pair: Pair) -> str:
    """The runbook's text of `reseed_site`, for the steps that run it."""
    back, src = pair.to, pair.other
    return (
        f"Scale {back.environment}'s StatefulSet to 0. Before deleting its PVCs, re-read {src.environment} until "
        "it proves a live,\nhealthy leader (DCS config leader; lock holder a running primary; lock renewed while "
        "watched; the system\nid the preflight read), else refuse with the PVCs kept and the members scaled back "
        "up. Delete them and\nwait until they are gone; clear `initialize`/`history` and the "
        f"{back.leader_map} annotations (rolegen\nrender --reseed); re-read {back.config_map} (created if missing) "
        f"as a standby of {src.environment}; only then scale\nback up; wait for the clone from {src.environment} "
        "to stream."
    )


def reseed_site(pair: Pair, timeout: float, *, system_id: str | None, rerun: str) -> None:
    """Wipe `pair.to` and clone it again from `pair.other`. `system_id`: the peer's `initialize` as the preflight
    read it (the data the operator agreed to keep); `rerun`: the command that resumes, for refusals."""
    back, src, cluster = pair.to, pair.other, pair.cluster(pair.to)
    count = replicas(pair)
    early = leader_blockers(pair.read(src), system_id)
    if early:
        raise RolegenError(f"{back.environment} was not wiped: {'; '.join(early)}",
                           hint=f"nothing was changed; rolegen status, then once {src.environment} leads: {rerun}")
    pair.guard()
    cluster.scale("statefulset", back.release, 0)
    pair.wait(f"{back.environment} to stop every member", lambda: not pair.read(back).members, timeout)
    try:
        _prove_source(pair, system_id, rerun)
    except RolegenError as exc:
        _scale_back(pair, count, exc)
        raise
    prefix = f"data-{back.release}-"
    for name in _pvcs(pair, prefix):
        pair.guard()
        cluster.delete("pvc", name)
    try:
        pair.wait(f"{back.environment}'s PVCs to be gone", lambda: not _pvcs(pair, prefix), timeout)
    except WaitTimedOut:
        raise RolegenError(
            f"{back.environment} is wiped and scaled to 0, but its PVCs are still there (Terminating: "
            f"{', '.join(_pvcs(pair, prefix))})",
            hint=f"find what holds them (kubectl -n {back.namespace} get pvc,pod; a finalizer or a Pod still using "
            f"them), then re-run: {rerun}. Scaling up before they are gone would bind them again",
        ) from None
    _forget(pair, rerun)
    pair.log(f"   {back.environment} wiped: PVCs deleted, initialize/history/leader cleared; scaling to {count}")
    pair.guard()
    cluster.scale("statefulset", back.release, count)
    pair.wait(f"{back.environment} to clone and stream from {src.environment}", lambda: streaming(pair), timeout)


def streaming(pair: Pair) -> bool:
    """The target follows the leader's timeline, streams, and nothing shows its data left that history."""
    back_state, leader_state = pair.read_both()
    return follows(back_state, leader_state, streaming=True) and divergence(back_state, leader_state) is None


def _pvcs(pair: Pair, prefix: str) -> list[str]:
    names = (pvc["metadata"]["name"] for pvc in pair.cluster(pair.to).list("pvc"))
    return sorted(n for n in names if n.startswith(prefix) and n.removeprefix(prefix).isdigit())


def _prove_source(pair: Pair, system_id: str | None, rerun: str) -> SiteState:
    """Read the source right before the wipe until it proves itself a live, healthy leader: its lock renewed while
    watched, for at most one ttl (Patroni renews it every loop_wait, which is shorter). A failed read stops here,
    as it is: only a wait that ran out is a refusal."""
    back, src = pair.to, pair.other
    baseline = pair.read(src)
    last: list[SiteState] = [baseline]
    why: list[str] = []

    def proven() -> bool:
        last[0] = pair.read(src)
        why[:] = source_blockers(baseline, last[0], system_id)
        return not why

    try:
        pair.wait(f"{src.environment} to renew its leader lock (proof it leads, before the wipe)", proven,
                  max(baseline.ttl, 1.0), every=0.5)
    except WaitTimedOut:
        raise RolegenError(
            f"{back.environment} was not wiped: {src.environment} is not proven a healthy leader: {'; '.join(why)}",
            hint=f"rolegen status; once {src.environment} leads again: {rerun}",
        ) from None
    return last[0]


def _scale_back(pair: Pair, count: int, exc: RolegenError) -> None:
    """Nothing was deleted: `pair.to`'s members come back with their data, as the fenced standbys they were. Left
    at 0 they would keep the leader's site from starting too when its members restart: its startup guard waits
    for a peer that answers (chaos seed 904 found that deadlock)."""
    back = pair.to
    try:
        pair.guard()
        pair.cluster(back).scale("statefulset", back.release, count)
        exc.message += f"; {back.environment} is back at {count} member(s) with its data (a fenced standby)"
    except RolegenError as failed:
        exc.message += (f"; {back.environment} is scaled to 0 with its data (PVCs kept), and scaling it back to "
                        f"{count} failed ({failed.message}): kubectl -n {back.namespace} scale statefulset "
                        f"{back.release} --replicas={count}")


def _forget(pair: Pair, rerun: str) -> None:
    """What Patroni and rolegen remember of the wiped data: `initialize`/`history` (the `config` kept as the
    standby role plus hand-set keys, written against the resourceVersion read; created when missing), the leader
    lock; rolegen's fence record now says the site was re-seeded (its old data, and any divergence in it, is
    gone). The config is verified by a re-read: members started without it would bootstrap an empty primary."""
    back, cluster = pair.to, pair.cluster(pair.to)
    declared = dcs_config(replace(back, role="standby-leader"))

    def snapshot() -> Snapshot:
        state = pair.read(back)
        return state.config, state.config_resource_version

    write_config(cluster, back.config_map, declared, snapshot(), snapshot, guard=pair.guard,
                 clear=("history", "initialize"), create=lambda text: config_map_object(back, text), attempts=5)
    wrong = standby_config_blockers(pair.read(back), back.peer.host, back.peer.port)
    if wrong:
        raise RolegenError(
            f"{back.environment} is wiped and scaled to 0, and its members must not start: {'; '.join(wrong)}",
            hint=f"rolegen render --env {back.environment} --reseed prints the patches; once {back.config_map} "
            f"declares standby_cluster: {rerun}",
        )
    if cluster.get("configmap", back.leader_map) is not None:
        pair.guard()
        cleared = {"metadata": {"annotations": dict.fromkeys(LEADER_ANNOTATIONS)}}
        cluster.merge_patch("configmap", back.leader_map, cleared)
    # A clone of the leader holds nothing of its own: the record says so, tied to the current promotion.
    promotion = (pair.read(pair.other).records.promotion or {}).get("id")
    pair.record(back, FENCE, {"leader": pair.other.environment, "promotion": promotion, "members": {},
                              "max_timeline": None, "writers": [], "reseeded": True})

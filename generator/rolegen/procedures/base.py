"""What every procedure shares: the pair of sites and their clusters, guarded writes (role, records, fence),
waits, and how roles are recorded on disk once a procedure is done. Steps and their runner: procedures.steps."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rolegen.cluster.dcs_write import write_config
from rolegen.cluster.kubectl import ClusterUnreachable, Conflict
from rolegen.cluster.lease import Lease
from rolegen.cluster.pair import SitePair, load_sites, witness_lease
from rolegen.cluster.records import FENCE, PROMOTION, Records
from rolegen.cluster.site_state import SiteState
from rolegen.cluster.wait import poll
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.offline.generated import record_role
from rolegen.offline.render import dcs_config
from rolegen.offline.spec import Role, Spec
from rolegen.procedures.journal import Journal
from rolegen.procedures.rules import FenceMarker, demotion_blockers, holder
from rolegen.procedures.shutdown_proof import shutdown_proof
from rolegen.progress import WaitLine
from rolegen.witness.lease import WitnessLease

Log = Callable[[str], None]
# Seconds between reads of a wait while the sites are watched (SitePair.live): a change wakes it sooner. Reads are
# cheap then (milliseconds through the API proxy), but each is one more list on both API servers.
WATCHED_EVERY = 0.25


@dataclass
class Pair(SitePair):
    """The site pair (rolegen.cluster.pair) as a procedure uses it: its log and timings, the lease it holds, its
    guarded writes and waits."""

    log: Log = print
    timings: dict[str, float] = field(default_factory=dict)
    lease: Lease | None = None  # set while a CLI run holds the role-change lease: checked before every write
    witness: WitnessLease | None = None  # the pair's witness Lease, when its specs declare `witness:`
    witness_record: dict[str, Any] | None = None  # the witness step's holder before/after, for the promotion record
    journal: Journal | None = None  # a CLI run's Events and history record (rolegen.procedures.journal)
    _t0: float = field(default_factory=time.monotonic)
    _background: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=1))
    _fence_write: Future[None] | None = None

    def guard(self, spec: Spec | None = None) -> None:
        """Before a write to `spec`'s site (any site if None): refuse unless this run's lease is provably its own
        there (rolegen.cluster.lease.Lease.check: re-read, token, renewal age on a clock that counts suspend)."""
        if self.lease is not None:
            self.lease.check(spec.environment if spec is not None else None)

    def mark(self, event: str) -> None:
        """A moment of the run: its timing and, with a journal, its Event (rolegen.procedures.journal)."""
        self.timings[event] = round(time.monotonic() - self._t0, 3)
        if self.journal is not None:
            self.journal.step(event, self.timings[event])

    def note(self, **facts: Any) -> None:
        """Facts for the run's history record and its next Event (the LSN and timeline at the gate, the new
        timeline); None values are not kept."""
        if self.journal is not None:
            self.journal.facts.update({k: v for k, v in facts.items() if v is not None})

    def write_role(self, spec: Spec, role: Role, state: SiteState, *, slot: bool = True) -> None:
        """Rewrite the `config` annotation for `role`, keeping hand-set keys: rolegen.cluster.dcs_write's guarded write
        (resourceVersion-checked, recomputed from a fresh read on a conflict; an identical config is not
        rewritten). `slot=False`: a standby without its DR slot's `primary_slot_name` (see `unslot`)."""

        def unslotted(target: dict[str, Any]) -> None:
            if not slot and isinstance(target.get("standby_cluster"), dict):
                target["standby_cluster"].pop("primary_slot_name", None)

        def reread() -> tuple[dict[str, Any] | None, str | None]:
            fresh = self.read(spec)
            return fresh.config, fresh.config_resource_version

        write_config(self.cluster(spec), spec.config_map, dcs_config(replace(spec, role=role)),
                     (state.config, state.config_resource_version), reread, adjust=unslotted,
                     guard=lambda: self.guard(spec),
                     log=lambda line: self.log(f"{line} ({spec.environment})"))

    def unslot(self, state: SiteState) -> SiteState:
        """Before the old site is demoted, the target streams without the DR slot: a demoted (or fenced) site is a
        standby cluster, where Patroni keeps no slot for its peer, and the target must still be able to stream
        what that site holds (a crashed member's last WAL) until it is promoted, which drops standby_cluster.
        Returns the target as read after the write (or as given, when there is nothing to change)."""
        standby = (state.config or {}).get("standby_cluster")
        if not isinstance(standby, dict) or "primary_slot_name" not in standby:
            return state
        self.log(f"   {self.to.environment} streams without its DR slot until promoted "
                 f"(standby_cluster.primary_slot_name removed)")
        self.write_role(self.to, "standby-leader", state, slot=False)
        return self.read(self.to)

    def record(self, spec: Spec, key: str, value: dict[str, Any] | None, seen: Records | None = None) -> None:
        """Write one of rolegen's records (rolegen.cluster.records) on `spec`'s site, re-reading on a conflict. `seen`:
        the records as a site read just returned them, to save a read on the way (switchover's critical path)."""
        store = self.store(spec)
        version = seen.resource_version if seen is not None else None
        for attempt in range(5):
            self.guard(spec)
            if version is None:
                version = store.ensure().resource_version
            assert version is not None
            try:
                store.write({key: value}, version)
                return
            except Conflict:
                version = None
                if attempt == 4:
                    raise

    def demote(self, spec: Spec, state: SiteState, timeout: float, *, leader: Spec, promotion: str | None,
               defer_record: bool = False) -> SiteState:
        """Fence `spec`'s site (standby_cluster -> its peer) unless its DCS config already says so, then wait
        until no member of it may accept writes (rules.demotion_blockers: observed, not assumed), and record
        what each member held at that moment (rolegen.cluster.records FENCE) — unless a fence record of the same
        promotion exists: the first observation is the evidence. Returns the site as last read. With
        `defer_record` the record is written in the background: `fence_recorded()` waits for it (a switchover
        reads the gate meanwhile, and joins before it promotes)."""
        # The baseline is the read the fence is computed from: anything seen to change after it may predate the
        # fence by a moment, which only makes the verdict more cautious (a lock counts as alive longer).
        marker = FenceMarker.of(state, time.monotonic())
        if state.dcs_role != "standby-leader":
            self.write_role(spec, "standby-leader", state)
            self.mark("demote_written")
        last: list[SiteState] = [state]
        blockers: list[str] = []

        def done() -> bool:
            last[0] = self.read(spec)
            blockers[:] = demotion_blockers(last[0], marker, time.monotonic())
            return not blockers

        try:
            self.wait(f"no member of {spec.environment} to accept writes", done, timeout, every=0.05)
        except WaitTimedOut:
            raise RolegenError(
                f"{spec.environment} is fenced (its DCS config declares standby) but a member may still accept "
                f"writes: {'; '.join(blockers)}",
                # A force-deleted Pod is forgotten by the API at once, whether or not its node stopped it: on a
                # partitioned node PostgreSQL may keep running beside the replacement the StatefulSet starts.
                hint=f"if its Patroni hangs, stop that member's PostgreSQL for certain first: on its node, or stop the "
                f"node; then delete the Pod (kubectl --context {spec.context or '<context>'} -n {spec.namespace} "
                "delete pod NAME). Never force-delete it (--grace-period=0 --force) while its node may be "
                "unreachable: the node may still run PostgreSQL. Then re-run the same rolegen command: it resumes. "
                f"To keep {spec.environment} as it was instead: rolegen apply --env {spec.environment} (its spec "
                "still declares its old role)",
            ) from None
        final = last[0]
        if promotion is not None and (final.records.fence or {}).get("promotion") == promotion:
            return final  # evidence for this promotion exists: what members did since cannot improve it
        # A member that proved its clean shutdown since the fence (its own pg_control report) is no writer, however
        # stale Patroni's last report of it; its shutdown checkpoint is where its data ends.
        proofs = {m.name: shutdown_proof(m, marker.controls) for m in final.members}
        members = {m.name: {"timeline": m.timeline, "lsn": m.lsn, "role": m.role}
                   | ({"shutdown_checkpoint": proofs[m.name]} if proofs[m.name] is not None else {})
                   for m in final.members}
        value = {
            "leader": leader.environment,
            "promotion": promotion,
            "members": members,
            "max_timeline": max(final.timelines) if final.timelines else None,
            "writers": [m.name for m in final.writable_members if proofs[m.name] is None],
        }
        if defer_record:
            self._fence_write = self._background.submit(self.record, spec, FENCE, value, final.records)
        else:
            self.record(spec, FENCE, value, final.records)
        return final

    def fence_recorded(self) -> None:
        """Wait for a deferred fence record (demote(defer_record=True)); its failure is raised here."""
        if self._fence_write is not None:
            pending, self._fence_write = self._fence_write, None
            pending.result()

    def record_promotion(self, target: SiteState, *, timeline_before: int | None, fenced_first: bool,
                         lsn: int | None = None, link: bool = True, old_timeline: int | None = None) -> str:
        """Record, before promoting the target, the timeline it leaves (and, apart, `old_timeline`: the old
        site's highest, so a reused number shows); with `link`, tie the old site's fence record (if this run or
        an earlier one observed the fence) to this promotion. Returns its id."""
        if lsn is None:
            lead = holder(target)
            lsn = lead.replay_lsn if lead and lead.replay_lsn is not None else (lead.lsn if lead else None)
        ident = f"{self.other.environment}->{self.to.environment}@{timeline_before}/{lsn}"
        self.record(self.to, PROMOTION, seen=target.records, value={
            "id": ident,
            "from": self.other.environment,
            "timeline_before": timeline_before,
            "lsn": lsn,
            "fenced_first": fenced_first,
            **({"old_timeline": old_timeline} if old_timeline is not None else {}),
            **({"witness": self.witness_record} if self.witness_record is not None else {}),
        })
        if not link:
            return ident
        try:
            fence = self.store(self.other).read().fence or {}
        except ClusterUnreachable:
            return ident  # fenced later, by the run that finds its API answering again
        if fence and fence.get("leader") == self.to.environment and not fence.get("promotion"):
            self.record(self.other, FENCE, {**fence, "promotion": ident})
        return ident

    def settle_promotion(self) -> None:
        """Complete the promotion record with the timeline the new leader reports (a standby leader may have
        reported a stale, lower timeline before: the new timeline minus one is the one it really left), and with
        the witness Lease's holder before and after this run moved it (a handover records its promotion before)."""
        state = self.read(self.to)
        lead, promotion = holder(state), state.records.promotion
        if not promotion or lead is None or lead.role != "leader" or lead.timeline is None:
            return
        self.note(new_timeline=lead.timeline)
        witness = {"witness": self.witness_record} if self.witness_record is not None else {}
        if promotion.get("timeline") == lead.timeline and all(promotion.get(k) == v for k, v in witness.items()):
            return
        before = promotion.get("timeline_before")
        # A standby leader may report a stale, lower timeline (its last restartpoint's): the one it left is at
        # least the new one minus one. Never raised from the old site's timeline (recorded apart: old_timeline).
        left = max(before, lead.timeline - 1) if isinstance(before, int) else lead.timeline - 1
        self.record(self.to, PROMOTION, {**promotion, "timeline": lead.timeline, "timeline_before": left, **witness})

    def wait(self, what: str, check: Callable[[], bool], timeout: float, every: float = 0.1,
             gap: Callable[[], int | None] | None = None, hint: str | None = None) -> None:
        """Poll `check` until true (rolegen.cluster.wait.poll); one live line on a terminal (what, elapsed, the LSN
        gap in bytes when `gap` knows it), a plain line every 5 s otherwise. Running out raises WaitTimedOut; an
        error `check` raises (a failed read) propagates as it is: it is never a timeout."""
        line = WaitLine(what, timeout, self.log, gap)
        changes = self.changes
        if changes is not None:  # woken by the sites' changes: the poll is only the fallback
            every = max(every, WATCHED_EVERY)
        try:
            poll(check, bool, timeout=timeout, every=every, what=what, hint=hint,
                 seen=lambda ok, _: None if ok else line.update(),
                 sleep=changes.sleep if changes is not None else None)
        except WaitTimedOut:
            line.close("timed out")
            raise
        line.close("done")


def load_pair(
    env_dir: Path,
    to: str,
    *,
    kubeconfig: Path | None = None,
    log: Log = print,
    cache_dir: Path | None = None,
    lease: Lease | None = None,
) -> Pair:
    sites = load_sites(env_dir, to, kubeconfig=kubeconfig, cache_dir=cache_dir)
    return Pair(sites.env_dir, sites.to, sites.other, sites.clusters, log=log, lease=lease,
                witness=witness_lease(sites.to, kubeconfig=kubeconfig, cache_dir=cache_dir))


def follows(standby: SiteState, leader: SiteState, *, streaming: bool = False) -> bool:
    """`standby`'s leading member is a standby leader on `leader`'s timeline (and streaming, if asked)."""
    mine, theirs = standby.leader_member, leader.leader_member
    return (
        mine is not None
        and theirs is not None
        and mine.role == "standby-leader"
        and (not streaming or mine.state == "streaming")
        and mine.timeline == theirs.timeline
    )


def status_line(state: SiteState) -> str:
    leader = state.leader_member
    where = f"{leader.name} tl {leader.timeline}" if leader else "no leading member"
    return f"{state.environment}: DCS says {state.dcs_role}, Patroni reports {state.live_role or 'none'} ({where})"


def record_roles(pair: Pair, *, leader: Spec, standby: Spec) -> None:
    """Rewrite the two specs' `role:` lines (demotion first: never two leaders on disk) and regenerate."""
    roles: tuple[tuple[Spec, Role], ...] = ((standby, "standby-leader"), (leader, "leader"))
    for spec, role in roles:
        for change in record_role(pair.env_dir, spec.environment, role):
            if change.status != "identical":
                pair.log(f"   {change.status:9} {change.display}")

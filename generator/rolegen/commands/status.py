"""`rolegen status`: both sites side by side, from API objects only (no exec into Pods), and a verdict a script
or a monitor can use: `healthy` is False (exit 1) when a site is unreachable, reports a role other than the one
declared, still has to be fenced, is DIVERGED (its data went past the point where the leader's timeline
began: procedures/divergence.py), or is the standby site and does not stream from its peer (the DR link is down: every
commit since is at risk if the leader's site is lost); and for the time bombs of rolegen.cluster.site_checks (Patroni
paused, a DCS role other than the spec's or Patroni's, a declared DR slot missing) and a replay lag beyond the
switchover's bound. One problem a line, each naming the command that clears it. A pair that declares a witness
shows it too (rolegen.witness.status): in automatic mode, a witness that does not arm the failover is a problem."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolegen.cluster.dependents import DependentState, read_for_status, status_problems
from rolegen.cluster.health import MAX_LAG_BYTES, not_streaming, replay_lag, system_ids_differ
from rolegen.cluster.kubectl import ClientInfo, Cluster, ClusterError, client_info
from rolegen.cluster.pair import site_pair, witness_lease
from rolegen.cluster.site_checks import Finding, site_findings
from rolegen.cluster.site_state import SiteState, read_site
from rolegen.cluster.slot_status import SlotStatus, mib, pair_slot_status
from rolegen.cluster.storage import size_text, storage_families
from rolegen.offline.spec import Spec, Witness
from rolegen.offline.workspace import load_workspace
from rolegen.procedures.divergence import Divergence, divergence
from rolegen.procedures.repair import Repair, plan, repair_families
from rolegen.procedures.rules import lsn_text
from rolegen.prometheus import Family, exposition
from rolegen.witness.lease import WitnessLease
from rolegen.witness.status import WitnessStatus, pair_witness, read_lease


@dataclass
class SiteStatus:
    environment: str
    declared: str
    context: str | None
    state: SiteState | None  # None: API unreachable
    error: str | None = None
    peer_dcs_role: str | None = None
    diverged: Divergence | None = None
    repair: Repair | None = None  # for a DIVERGED site: what `failback --method auto` would do, and move
    slot: SlotStatus | None = None  # the DR slot this site keeps while it leads (rolegen.cluster.slot_status)
    peer_slot: SlotStatus | None = None  # the one its peer keeps for it while it is the standby
    findings: list[Finding] = field(default_factory=list)  # rolegen.cluster.site_checks
    dependents: tuple[DependentState, ...] = ()  # its spec's dependents as read (README "Applications")
    dependents_error: str | None = None

    @property
    def fence_pending(self) -> bool:
        """The peer's DCS config makes it leader, and this site's does too (or cannot be read)."""
        if self.peer_dcs_role != "leader" or self.declared != "standby-leader":
            return False
        return self.state is None or self.state.dcs_role == "leader"

    @property
    def not_streaming(self) -> str | None:
        """The standby leader's state when the standby site runs as declared but receives nothing from its peer."""
        if self.state is None or self.declared != "standby-leader":
            return None
        return not_streaming(self.state)

    @property
    def problems(self) -> list[str]:
        out = []
        if self.state is None:
            out.append(f"{self.environment} unreachable")
        elif self.state.live_role != self.declared:
            out.append(f"{self.environment} reports {self.state.live_role or 'no leader'}, declared {self.declared}")
        if self.not_streaming:
            out.append(f"{self.environment} not streaming from its peer ({self.not_streaming})")
        if self.fence_pending:
            out.append(f"{self.environment} fence pending")
        if self.diverged is not None:
            out.append(f"{self.environment} diverged")
        if self.peer_slot is not None and self.peer_slot.problem:
            out.append(f"{self.environment} lost its slot on {self.peer_slot.leader}")
        out += [f.line() for f in self.findings]
        if self.state is not None:
            out += status_problems(self.environment, self.declared, self.dependents, self.dependents_error)
        return out

    def as_dict(self) -> dict[str, Any]:
        live: dict[str, Any] = self.state.as_dict() if self.state else {"error": self.error}
        members: list[dict[str, Any]] = live.get("members", [])
        for member in members:
            for key in ("lsn", "replay_lsn"):
                if member.get(key) is not None:
                    member[f"{key}_text"] = lsn_text(member[key])
        return {
            "environment": self.environment,
            "declared": self.declared,
            "context": self.context,
            "fence_pending": self.fence_pending,
            "diverged": None if self.diverged is None else {
                "reason": self.diverged.reason, "repair": self.diverged.repair,
                **(self.repair.as_dict() if self.repair else {})},
            "slot": None if self.slot is None else self.slot.as_dict(),
            **live,
            **({"dependents": [d.as_dict() for d in self.dependents]} if self.dependents else {}),
        }


@dataclass
class StatusResult:
    sites: list[SiteStatus]
    client: ClientInfo | None = None  # the kubectl/oc binary used, and its version
    witness: WitnessStatus | None = None  # the pair's `witness:` as read (None: no spec declares one)

    @property
    def same_system_id(self) -> bool | None:
        states = [s.state for s in self.sites if s.state and s.state.initialize]
        if not states:
            return None
        return not any(system_ids_differ(states[0], other) for other in states[1:])

    def _by_role(self, role: str) -> SiteState | None:
        found = [s.state for s in self.sites if s.state and s.state.live_role == role]
        return found[0] if len(found) == 1 else None

    @property
    def lag_bytes(self) -> int | None:
        leader, standby = self._by_role("leader"), self._by_role("standby-leader")
        return None if leader is None or standby is None else replay_lag(standby, leader)

    @property
    def problems(self) -> list[str]:
        out = [p for s in self.sites for p in s.problems]
        if self.same_system_id is False:
            out.append("system ids differ")
        lag = self.lag_bytes
        if lag is not None and lag > MAX_LAG_BYTES:
            standby = next(s.environment for s in self.sites if s.state and s.state.live_role == "standby-leader")
            out.append(f"{standby} lags {mib(lag)} behind (bound {mib(MAX_LAG_BYTES)}: a switchover refuses); "
                       "clear: rolegen status once it caught up; if the lag keeps growing, check the DR link")
        return out + (self.witness.problems if self.witness else [])

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "sites": [s.as_dict() for s in self.sites],
            "same_system_id": self.same_system_id,
            "lag_bytes": self.lag_bytes,
            "healthy": self.healthy,
            "problems": self.problems,
            "witness": self.witness.as_dict() if self.witness else None,
            **({"client": vars(self.client)} if self.client else {}),
        }

    def metrics(self) -> str:
        """The pair as Prometheus metrics (`rolegen status -f prometheus`, pair_metrics)."""
        return exposition(pair_metrics(self))

    def lines(self) -> list[str]:
        out = [self.client.line()] if self.client else []
        for site in self.sites:
            head = f"{site.environment} (context {site.context or '-'}): declared {site.declared}"
            if site.state is None:
                out.append(f"{head}; UNREACHABLE: {site.error}")
            else:
                st = site.state
                mismatch = "" if st.live_role == site.declared else "  <-- differs from declared"
                paused = " (PAUSED)" if st.paused else ""
                out.append(f"{head}; DCS config {st.dcs_role}{paused}; Patroni reports {st.live_role or 'no leader'}"
                           f"{mismatch}")
                for m in st.members:
                    lsn = m.replay_lsn if m.role != "leader" and m.replay_lsn is not None else m.lsn
                    shown = lsn_text(lsn) if lsn is not None else "-"
                    sizes = (f"  pg_wal {size_text(m.storage.wal_bytes)}, databases "
                             f"{size_text(m.storage.data_bytes)}" if m.storage else "")
                    out.append(f"  {m.name:20} {m.role or '-':15} {m.state or '-':10} tl {m.timeline or '-'}  "
                               f"lsn {shown}{sizes}")
            out += [f"  dependent {d.line()}" for d in site.dependents]
            if site.slot is not None:
                out.append(f"  {site.slot.line()}")
            lost = site.peer_slot
            if lost is not None and lost.problem:
                out.append(f"  SLOT LOST: {lost.problem}")
                out.append(f"    re-seed: {lost.next_command}")
            if site.fence_pending:
                out.append(f"  FENCE PENDING: {site.environment} must get standby_cluster before its members lead")
            if site.diverged is not None:
                out.append(f"  DIVERGED: {site.diverged.reason}")
                repair = site.repair
                method = site.diverged.repair if repair is None else repair.method
                by_size = f": {repair.why}" if repair is not None and repair.by_size else ""
                out.append(f"    repair: rolegen failback --to {site.environment} (method {method}{by_size})")
                if repair is not None:
                    out.append(f"    over the DR link: {repair.moves()}")
        out += self.witness.lines() if self.witness else []
        same = self.same_system_id
        out.append("system id: " + {None: "unknown", True: "equal on both sites", False: "DIFFERS"}[same])
        if self.lag_bytes is not None:
            out.append(f"standby replay lag: {self.lag_bytes} bytes")
        out += [f"NOT HEALTHY: {problem}" for problem in self.problems] or ["healthy"]
        return out


def pair_metrics(result: StatusResult) -> list[Family]:
    """One read of the pair as metric families (units in the names, one label set per site)."""
    up = Family("rolegen_site_up", "1 when the site's API answered rolegen's read, 0 when it did not.")
    role = Family("rolegen_site_role", "1 for the role a site has per source: declared (its spec), dcs (its DCS "
                  "config), live (what Patroni reports; none: no leading member).")
    streaming = Family("rolegen_standby_streaming", "1 when the standby site's standby leader streams from its "
                       "peer, 0 when it does not (the DR link is down or broken).")
    lag = Family("rolegen_standby_replay_lag_bytes", "Bytes of the leader's WAL the standby leader has not replayed.")
    bound = Family("rolegen_standby_replay_lag_bound_bytes", "The replay lag beyond which a switchover refuses.")
    fence = Family("rolegen_fence_pending", "1 when the site should be fenced (its peer's DCS config leads) and "
                   "still declares leader (or cannot be read).")
    diverged = Family("rolegen_diverged", "1 when the site holds data its leading peer lacks (failback repairs it).")
    lease = Family("rolegen_lease_held", "1 while a rolegen run holds the role-change lease on the site.")
    retained = Family("rolegen_dr_slot_retained_wal_bytes", "WAL the DR slot holds back on the leading site.")
    wal_status = Family("rolegen_dr_slot_wal_status", "1 for the DR slot's wal_status (reserved, extended, "
                        "unreserved, lost, missing).")
    same = Family("rolegen_pair_same_system_id", "1 when both sites hold one database (one system id).")
    healthy = Family("rolegen_pair_healthy", "1 when rolegen status finds no problem.")
    problems = Family("rolegen_pair_problems", "How many problems rolegen status lists.")
    for site in result.sites:
        env = site.environment
        up.add(site.state is not None, site=env)
        role.add(1, site=env, source="declared", role=site.declared)
        if site.state is None:
            continue
        role.add(1, site=env, source="dcs", role=site.state.dcs_role or "none")
        role.add(1, site=env, source="live", role=site.state.live_role or "none")
        if site.declared == "standby-leader":
            streaming.add(not_streaming(site.state) is None and site.state.live_role == "standby-leader", site=env)
            if result.lag_bytes is not None:
                lag.add(result.lag_bytes, site=env)
        fence.add(site.fence_pending, site=env)
        diverged.add(site.diverged is not None, site=env)
        lease.add("holder" in (site.state.records.lease or {}), site=env)
        if site.slot is not None:
            if site.slot.retained is not None:
                retained.add(site.slot.retained, site=env, slot=site.slot.name)
            wal_status.add(1, site=env, slot=site.slot.name, wal_status=site.slot.wal_status)
    bound.add(MAX_LAG_BYTES)
    if result.same_system_id is not None:
        same.add(result.same_system_id)
    healthy.add(result.healthy)
    problems.add(len(result.problems))
    witness = result.witness.families() if result.witness else []
    states = [s.state for s in result.sites if s.state is not None]
    repairs = {s.environment: s.repair for s in result.sites if s.repair is not None}
    return [up, role, streaming, lag, bound, fence, diverged, lease, retained, wal_status, same, healthy, problems,
            *storage_families(states), *repair_families(repairs), *witness]


def _read(spec: Spec, cluster: Cluster) -> SiteStatus:
    try:
        site = SiteStatus(spec.environment, spec.role, spec.context, read_site(spec, cluster))
    except ClusterError as exc:
        return SiteStatus(spec.environment, spec.role, spec.context, None, exc.message)
    if spec.dependents:
        site.dependents, site.dependents_error = read_for_status(cluster, spec.dependents)
    return site


def run(env_dir: Path, kubeconfig: Path | None = None) -> StatusResult:
    ws = load_workspace(env_dir)
    specs = ws.specs
    names = sorted(specs)
    clusters: dict[str, Cluster] = {}
    witnessed: tuple[Spec, Witness, WitnessLease] | None = None  # the pair's witness (status shows one pair's)
    for name in names:  # one site pair per pair of peers, built as diff, apply and the role verbs build it
        if name not in clusters:
            pair = site_pair(ws, name, kubeconfig=kubeconfig)
            clusters |= {pair.to.environment: pair.cluster(pair.to), pair.other.environment: pair.cluster(pair.other)}
            lease = witness_lease(pair.to, kubeconfig=kubeconfig)
            if witnessed is None and lease is not None and pair.to.witness is not None:
                witnessed = (pair.to, pair.to.witness, lease)
    with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
        read = pool.submit(read_lease, witnessed[2]) if witnessed else None
        sites = list(pool.map(lambda n: _read(specs[n], clusters[n]), names))
    by_name = {s.environment: s for s in sites}
    for site in sites:
        peer = by_name.get(specs[site.environment].peer.environment)
        if peer is None or peer.state is None:
            continue
        site.peer_dcs_role = peer.state.dcs_role
        if site.state is not None and peer.state.live_role == "leader" and site.state.live_role != "leader":
            site.diverged = divergence(site.state, peer.state)
            site.repair = plan(site.state, peer.state) if site.diverged is not None else None
    found = pair_slot_status(specs, {s.environment: s.state for s in sites})
    for site in sites:
        site.slot = found.get(site.environment)
        site.peer_slot = found.get(specs[site.environment].peer.environment)
        if site.state is not None:
            site.findings = site_findings(specs[site.environment], site.state, fence_pending=site.fence_pending)
    try:
        client = client_info()
    except ClusterError as exc:
        client = ClientInfo("(none)", None, exc.message)
    live = {name: site.state for name, site in by_name.items()}
    witness = None if witnessed is None or read is None else pair_witness(*witnessed[:2], specs, live, *read.result())
    return StatusResult(sites, client, witness)

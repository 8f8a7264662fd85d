"""One site pair: a site of the workspace (`to`), its peer (`other`) and a cluster client for each, plus the
role-change lease on both. status, diff, apply and the role verbs build it here, the same way; the procedures
extend it with their shared operations (rolegen.procedures.base.Pair). The pair's witness Lease, at a third
site, is reached through a client built here too (`witness_lease`)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rolegen.cluster.api_session import opened
from rolegen.cluster.changes import Changes, Watched, watching
from rolegen.cluster.kubectl import Cluster, cluster_for, witness_cluster_for
from rolegen.cluster.lease import Holder, Lease
from rolegen.cluster.records import RecordStore
from rolegen.cluster.site_state import SiteState, read_site, selector
from rolegen.errors import RolegenError, UsageError
from rolegen.offline.spec import Spec
from rolegen.offline.workspace import Workspace, load_workspace
from rolegen.witness.lease import WitnessLease


@dataclass
class SitePair:
    """The target site (`to`) and its peer (`other`), with cluster access for both."""

    env_dir: Path
    to: Spec
    other: Spec
    clusters: dict[str, Cluster]
    changes: Changes | None = None  # while `live()`: wakes the waits when either site changes

    @contextlib.contextmanager
    def live(self, log: Callable[[str], None] = print, *, target_only: bool = False,
             also: tuple[Cluster, ...] = ()) -> Iterator[None]:
        """For one role change: each site's API through a proxy opened once (rolegen.cluster.api_session: calls in
        milliseconds instead of a kubectl run each) and watched (rolegen.cluster.changes: a wait reads again as
        soon as Patroni writes). Everything keeps working without either: calls run kubectl, waits poll.
        `target_only`: a failover's old site keeps its kubectl runs (it may be gone: its calls are bounded as
        they always were), and nothing is watched. `also`: other clusters the run calls (the witness's), not
        watched. A site whose client cannot be chosen (its API does not answer) gets no proxy: its first call
        fails as it would have."""
        specs = (self.to,) if target_only else (self.to, self.other)
        sites = []
        for cluster in (*[self.cluster(spec) for spec in specs], *also):
            try:
                sites.append(cluster.proxy_site())
            except RolegenError:
                continue
        # Watched only when both sites are: a failover's waits read its old site by kubectl runs, at their own pace.
        watched = [] if target_only else [Watched(self.cluster(s), selector(s)) for s in specs]
        with opened(sites, log), watching(watched) as changes:
            self.changes = changes
            try:
                yield
            finally:
                self.changes = None

    def cluster(self, spec: Spec) -> Cluster:
        return self.clusters[spec.environment]

    def store(self, spec: Spec) -> RecordStore:
        return RecordStore(spec, self.cluster(spec))

    def read(self, spec: Spec) -> SiteState:
        return read_site(spec, self.cluster(spec))

    def read_both(self) -> tuple[SiteState, SiteState]:
        """(target, other) read concurrently: the gate polls both sites and every second counts."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            target, other = pool.submit(self.read, self.to), pool.submit(self.read, self.other)
            return target.result(), other.result()

    def role_lease(self, operation: str, *, force: bool, log: Callable[[str], None] = print,
                   other_may_be_gone: bool = False) -> Lease:
        """The role-change lease on both sites, which every verb that changes a site takes (one change at a time);
        `other_may_be_gone`: a failover's old site may not answer (rolegen.cluster.lease: `optional`)."""
        optional = frozenset({self.other.environment}) if other_may_be_gone else frozenset()
        return Lease([self.store(self.to), self.store(self.other)], Holder(operation), force=force, log=log,
                     optional=optional)


def site_pair(ws: Workspace, to: str, *, kubeconfig: Path | None = None, context: str | None = None,
              cache_dir: Path | None = None) -> SitePair:
    """`to` and its peer from a loaded workspace; `context` overrides `to`'s kubeconfig context only."""
    if to not in ws.specs:
        raise UsageError(f"unknown environment {to!r}", hint=f"known: {', '.join(sorted(ws.specs))}")
    target = ws.specs[to]
    other = ws.specs[target.peer.environment]
    clusters = {
        target.environment: cluster_for(target, kubeconfig, context, cache_dir=cache_dir),
        other.environment: cluster_for(other, kubeconfig, cache_dir=cache_dir),
    }
    return SitePair(ws.env_dir, target, other, clusters)


def load_sites(env_dir: Path, to: str, *, kubeconfig: Path | None = None, cache_dir: Path | None = None) -> SitePair:
    return site_pair(load_workspace(env_dir), to, kubeconfig=kubeconfig, cache_dir=cache_dir)


def witness_lease(spec: Spec, *, kubeconfig: Path | None = None, cache_dir: Path | None = None) -> WitnessLease | None:
    """The witness Lease of `spec`'s pair (both specs declare the same one: validate's pair rules), None without
    `witness:`; its duration, written for people, is fence_after."""
    if spec.witness is None:
        return None
    cluster = witness_cluster_for(spec.witness, kubeconfig, cache_dir)
    return WitnessLease(cluster, spec.witness.lease, math.ceil(spec.witness.timers.fence_after))

"""What every procedure shares: the pair of sites, their clusters, steps that print as a runbook, waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rolegen.drift import keep_extra
from rolegen.errors import RolegenError, UsageError
from rolegen.kube import Cluster, Conflict
from rolegen.live import SiteState, read_site
from rolegen.render import dcs_config, dumps_json
from rolegen.spec import Role, Spec
from rolegen.workspace import load_workspace

Log = Callable[[str], None]


@dataclass(frozen=True)
class Step:
    """One runbook step: `title` is the imperative line, `detail` says what exactly happens and why."""

    title: str
    detail: str


def runbook(name: str, steps: list[Step]) -> str:
    lines = [f"{name}:"]
    for number, step in enumerate(steps, 1):
        lines.append(f"{number}. {step.title}")
        lines.extend(f"   {line}" for line in step.detail.splitlines())
    return "\n".join(lines) + "\n"


@dataclass
class Pair:
    """The target site (`to`) and its peer (`other`), with cluster access for both."""

    env_dir: Path
    to: Spec
    other: Spec
    clusters: dict[str, Cluster]
    log: Log = print
    timings: dict[str, float] = field(default_factory=dict)
    _t0: float = field(default_factory=time.monotonic)

    def cluster(self, spec: Spec) -> Cluster:
        return self.clusters[spec.environment]

    def read(self, spec: Spec) -> SiteState:
        return read_site(spec, self.cluster(spec))

    def read_both(self) -> tuple[SiteState, SiteState]:
        """(target, other) read concurrently: the gate polls both sites and every second counts."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            target, other = pool.submit(self.read, self.to), pool.submit(self.read, self.other)
            return target.result(), other.result()

    def mark(self, event: str) -> None:
        self.timings[event] = round(time.monotonic() - self._t0, 3)

    def write_role(self, spec: Spec, role: Role, state: SiteState) -> None:
        """Rewrite the `config` annotation for `role`, keeping hand-set keys. The write carries the
        resourceVersion it was computed from; if the object changed meanwhile (Patroni also writes other
        annotations of it, e.g. `history`), the config is recomputed from a fresh read, never overwritten blindly."""
        declared = dcs_config(replace(spec, role=role))
        for attempt in range(3):
            new = keep_extra(state.config or {}, declared)
            try:
                self.cluster(spec).merge_patch(
                    "configmap",
                    spec.config_map,
                    {"metadata": {"annotations": {"config": dumps_json(new)}}},
                    resource_version=state.config_resource_version,
                )
                return
            except Conflict:
                if attempt == 2:
                    raise
                self.log(f"   {spec.config_map} of {spec.environment} changed meanwhile: re-read, recomputed")
                state = self.read(spec)

    def wait(self, what: str, check: Callable[[], bool], timeout: float, every: float = 0.1) -> None:
        start = time.monotonic()
        last_note = start
        while True:
            if check():
                return
            now = time.monotonic()
            if now - start > timeout:
                raise RolegenError(f"timed out after {timeout:.0f}s waiting for {what}")
            if now - last_note >= 5:
                self.log(f"   ... still waiting for {what} ({now - start:.0f}s)")
                last_note = now
            time.sleep(every)


def load_pair(
    env_dir: Path,
    to: str,
    *,
    kubeconfig: Path | None = None,
    log: Log = print,
    cache_dir: Path | None = None,
) -> Pair:
    specs = load_workspace(env_dir).specs
    if to not in specs:
        raise UsageError(f"unknown environment {to!r}", hint=f"known: {', '.join(sorted(specs))}")
    target = specs[to]
    other = specs[target.peer.environment]
    clusters = {s.environment: Cluster(s.namespace, s.context, kubeconfig, cache_dir) for s in (target, other)}
    return Pair(env_dir, target, other, clusters, log)


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


def describe(states: list[SiteState]) -> dict[str, Any]:
    return {s.environment: s.as_dict() for s in states}

"""`rolegen apply`: converge one site to its generated files, in a safe order.

1. refuse stale generated files (the spec changed since `rolegen render`);
2. read the site; refuse a role change (the spec declares another role than the live DCS config: that is a
   role verb's job, never Helm's or apply's), and creating the DCS config as leader while the peer leads;
3. show the plan, confirm (no lease is held while the prompt waits);
4. take the role-change lease on both sites, then read the site again: if it moved since the plan was shown,
   stop (re-run apply) rather than act on what the user did not see;
5. `helm upgrade --install` with the generated values, only when the values differ or the release is missing
   (so an unchanged site keeps its revision); the chart carries the live `config` annotation through;
6. make the `config` annotation hold the declared config plus hand-set keys: rolegen.cluster.dcs_write's guarded write
   (resourceVersion-checked, recomputed from a fresh read on a conflict, never a role change);
7. wait, with progress, until Patroni reports the declared role on the site's Pods;
8. give each dependent that differs its shape for the declared role (README "Applications": helm upgrade
   --install with that role's values, or kubectl scale), under the lease again, and wait until the site shows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rolegen.cluster.apply_rules import moved, moved_error, restores, role_change_refusal
from rolegen.cluster.dcs_write import ATTEMPTS, Snapshot, write_config
from rolegen.cluster.dependents_diff import converge, missing_workloads, with_dependents
from rolegen.cluster.helm import Releases
from rolegen.cluster.kubectl import Cluster, ClusterError, ClusterUnreachable, Conflict
from rolegen.cluster.lease import Lease
from rolegen.cluster.pair import SitePair, site_pair
from rolegen.cluster.site_diff import SitePlan, read_plan
from rolegen.cluster.site_state import SiteState, read_site
from rolegen.cluster.wait import poll
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.offline.generated import StaleOutput, check_current
from rolegen.offline.load import GENERATED_DIR
from rolegen.offline.render import dcs_config
from rolegen.offline.spec import Spec
from rolegen.offline.workspace import load_workspace


def _quiet(_: Any) -> None:
    return None


def _decline(_: str) -> bool:
    return False  # the safe default when no one wired a prompt


@dataclass(frozen=True)
class Hooks:
    """How apply talks to its user; the CLI wires printing and rolegen.prompt, tests wire what they need."""

    show: Callable[[SitePlan], None] = _quiet
    confirm: Callable[[str], bool] = _decline
    progress: Callable[[str], None] = _quiet


@dataclass(frozen=True)
class ApplyOptions:
    env: str
    kubeconfig: Path | None = None
    context: str | None = None
    dry_run: bool = False
    prune: bool = False
    force: bool = False  # take over an expired role-change lease
    timeout: float = 300.0  # for Patroni to report the declared role
    poll: float = 1.0


@dataclass
class ApplyResult:
    plan: SitePlan
    dry_run: bool = False
    revision_after: int | None = None  # set when Helm ran
    config_written: bool = False
    waited: float | None = None  # seconds until Patroni reported the role, when apply had to wait
    steps: list[str] = field(default_factory=list)
    dependents: list[str] = field(default_factory=list)  # the dependents given their shape

    @property
    def changed(self) -> bool:
        return self.revision_after is not None or self.config_written or bool(self.dependents)

    def lines(self) -> list[str]:
        """The closing lines (the plan was shown before): "Not changed", or what was done."""
        env = self.plan.environment
        if self.dry_run:
            return [f"{env}: dry run, nothing changed" + ("" if self.plan.changes else " (nothing to change)")]
        lines: list[str] = []
        if self.revision_after is not None:
            lines.append(f"{env}: helm release {self.plan.release} now at revision {self.revision_after}")
        if self.config_written:
            lines.append(f"{env}: config annotation written")
        if self.waited is not None:
            lines.append(f"{env}: Patroni reports {self.plan.declared_role} ({self.waited:.1f}s)")
        if self.dependents:
            lines.append(f"{env}: dependents in their {self.plan.declared_role} shape: {', '.join(self.dependents)}")
        if not self.changed:
            lines.append("Not changed")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.as_dict(),
            "dry_run": self.dry_run,
            "changed": self.changed,
            "revision_after": self.revision_after,
            "config_written": self.config_written,
            "waited": self.waited,
            "dependents": self.dependents,
        }


def run(env_dir: Path, opts: ApplyOptions, hooks: Hooks | None = None) -> ApplyResult:
    hooks = hooks or Hooks()
    ws = load_workspace(env_dir)
    [env] = ws.select([opts.env], False)
    spec = ws.specs[env]
    _refuse_stale(env_dir, env)
    pair = site_pair(ws, env, kubeconfig=opts.kubeconfig, context=opts.context)
    cluster = pair.cluster(spec)
    plan = with_dependents(read_plan(spec, cluster, prune=opts.prune), spec, cluster)
    _refuse(pair, plan)
    hooks.show(plan)
    result = ApplyResult(plan, dry_run=opts.dry_run)
    if opts.dry_run:
        return result
    if plan.changes and not hooks.confirm(f"Apply these changes to {env} (context {plan.context})?"):
        raise RolegenError("aborted: nothing changed")
    if plan.needs_helm or plan.needs_config:
        with _leased(pair, opts) as lease:
            # Asked first, leased after: the prompt has no time limit, so what it showed is read again here.
            fresh = with_dependents(read_plan(spec, cluster, prune=opts.prune), spec, cluster)
            changes = moved(plan, fresh)
            if changes:
                raise moved_error(env, changes)
            _refuse(pair, fresh)
            if fresh.needs_helm:
                lease.check()
                result.revision_after = _helm(env_dir, spec, cluster, fresh, hooks)
            result.config_written = _ensure_config(spec, cluster, fresh, helm_ran=fresh.needs_helm, hooks=hooks,
                                                   guard=lease.check)
    if not plan.role_ok or result.changed:
        result.waited = _wait_role(spec, cluster, opts, hooks)
    if plan.needs_dependents:  # once the database runs its declared role: an application follows it
        with _leased(pair, opts) as lease:
            result.dependents = converge(plan, spec, cluster, guard=lease.check, progress=hooks.progress)
    return result


def _refuse_stale(env_dir: Path, env: str) -> None:
    try:
        check_current(env_dir, [env])
    except StaleOutput as exc:
        exc.message = f"refusing to apply {env}: {exc.message} (the spec changed since rolegen render)"
        exc.hint = f"review the diff above, then run: rolegen render --env {env}"
        raise


def _refuse(pair: SitePair, plan: SitePlan) -> None:
    refusal = role_change_refusal(pair.to, plan) or missing_workloads(plan)
    if refusal is not None:
        raise refusal
    _refuse_second_leader(pair, plan)


@contextmanager
def _leased(pair: SitePair, opts: ApplyOptions) -> Iterator[Lease]:
    """The role-change lease on both sites: apply never interleaves with a switchover or failover (or another
    apply) of the pair. A site whose API does not answer cannot be leased, so apply refuses."""
    spec, peer_spec = pair.to, pair.other
    lease = pair.role_lease(f"apply --env {spec.environment}", force=opts.force)
    stack = ExitStack()
    try:
        stack.enter_context(lease.held())
    except ClusterUnreachable as exc:
        raise RolegenError(
            f"refusing to apply {spec.environment}: cannot take the role-change lease on both sites "
            f"({exc.message}); nothing was changed",
            hint=f"check the contexts of {spec.environment} and {peer_spec.environment}, then re-run rolegen apply "
            f"--env {spec.environment} (the lease on both sites keeps it from interleaving with a role change)",
        ) from None
    with stack:
        yield lease


def _refuse_second_leader(pair: SitePair, plan: SitePlan) -> None:
    """Creating the DCS config as leader (declared leader, no live `config` yet: the chart renders the role
    when it creates the object), or writing `leader` back to a site whose Patroni still runs it (restores), while
    the peer's Patroni leads would make two primaries. Checked before anything
    is shown and again under the lease. (A live config of another role is refused before: role_change_refusal.)"""
    spec, peer_spec = pair.to, pair.other
    if spec.role != "leader" or (plan.dcs_role is not None and not restores(spec, plan)):
        return
    peer_cluster = pair.cluster(peer_spec)
    try:
        peer = read_site(peer_spec, peer_cluster)
    except ClusterError as exc:
        # Unreachable peer: we cannot prove it is not leading. Failing over to a dead peer's twin is the
        # switchover command's job (it fences the old leader); apply stays conservative.
        raise RolegenError(
            f"refusing to make {spec.environment} leader: cannot read its peer {peer_spec.environment} "
            f"to check it is not leader ({exc.message})",
            hint=f"check the context of {peer_spec.environment}; if that site is lost: "
            f"rolegen failover --to {spec.environment}",
        ) from None
    if peer.live_role == "leader" or peer.dcs_role == "leader":
        member = peer.leader_member.name if peer.leader_member else "none yet"
        raise RolegenError(
            f"refusing to make {spec.environment} leader: its peer {peer_spec.environment} leads (DCS config "
            f"{peer.dcs_role}, Patroni {peer.live_role or 'no leader'}, member {member} on context "
            f"{peer_cluster.name}); nothing was changed on either site",
            hint=f"to move the leader: rolegen switchover --to {spec.environment}; if {spec.environment} should "
            f"stay standby, record it: rolegen render --env {spec.environment} --role standby-leader",
        )


def _helm(env_dir: Path, spec: Spec, cluster: Cluster, plan: SitePlan, hooks: Hooks) -> int:
    # The generated values file, not a fresh render: it is what was reviewed and committed (and the stale check
    # just proved the two equal).
    path = env_dir / GENERATED_DIR / spec.environment / "values.yaml"
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    verb = "install" if plan.revision is None else "upgrade"
    hooks.progress(f"{spec.environment}: helm {verb} {spec.release} (context {plan.context}) ...")
    release = Releases(cluster).upgrade_install(spec.release, values, config_map=spec.config_map)
    hooks.progress(f"{spec.environment}: release {spec.release} at revision {release.revision} ({release.status})")
    return release.revision


def _ensure_config(spec: Spec, cluster: Cluster, plan: SitePlan, *, helm_ran: bool, hooks: Hooks,
                   guard: Callable[[], None]) -> bool:
    """Write the declared config (plus hand-set keys, unless --prune) through the one guarded write. Without
    Helm the first attempt carries the version the plan was read at (under the lease); after Helm the ConfigMap
    is read again (Helm created it or applied the live annotation back, so its resourceVersion moved)."""

    def reread() -> Snapshot:
        site = read_site(spec, cluster)
        return site.config, site.config_resource_version

    seen = reread() if helm_ran else (plan.live_config, plan.config_resource_version)
    try:
        written = write_config(cluster, spec.config_map, dcs_config(spec), seen, reread,
                               keep_hand_set=not plan.prune, role_change=restores(spec, plan), guard=guard,
                               log=lambda line: hooks.progress(f"{spec.environment}: {line.strip()}"))
    except Conflict:
        done = " (the Helm upgrade before it was applied)" if helm_ran else ""
        raise Conflict(
            f"conflict: {spec.config_map} on context {plan.context} kept changing while it was written "
            f"({ATTEMPTS} attempts, each from a fresh read); the config annotation was not written{done}",
            hint=f"someone else is changing it: run rolegen diff --env {spec.environment}, then apply again",
        ) from None
    if written:
        hooks.progress(f"{spec.environment}: config annotation of {spec.config_map} patched")
    return written


def _wait_role(spec: Spec, cluster: Cluster, opts: ApplyOptions, hooks: Hooks) -> float:
    """Poll the Pods' `status` annotations until Patroni reports the declared role (no exec, no REST)."""
    last: list[str | None] = []

    def seen(site: SiteState, elapsed: float) -> None:
        if not last or site.live_role != last[-1]:
            hooks.progress(
                f"{spec.environment}: Patroni reports {site.live_role or 'no leader'} "
                f"(waiting for {spec.role}, {elapsed:.0f}s of {opts.timeout:.0f}s)"
            )
            last.append(site.live_role)

    start = time.monotonic()
    try:
        poll(lambda: read_site(spec, cluster), lambda site: site.live_role == spec.role, timeout=opts.timeout,
             every=opts.poll, what=f"{spec.environment}'s Patroni to report role {spec.role}", seen=seen)
    except WaitTimedOut as out:
        assert isinstance(out.last, SiteState)
        raise WaitTimedOut(
            f"{spec.environment}: Patroni did not report role {spec.role} within {opts.timeout:.0f}s "
            f"(live: {out.last.live_role or 'no leader'}); what was applied stays applied",
            hint=f"check the members (rolegen diff --env {spec.environment}); "
            "re-run apply with a longer --timeout to keep waiting", what=out.what, last=out.last,
        ) from None
    return time.monotonic() - start

"""`rolegen switchover|failover|failback|reseed`: thin entry points over rolegen.procedures, each run holding the
role-change lease (rolegen.lease) on both sites — on the reachable one only for a failover whose old site's API
does not answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.errors import RolegenError
from rolegen.kube import ClusterUnreachable
from rolegen.lease import Holder, Lease
from rolegen.procedures import failback, failover, reseed, switchover
from rolegen.procedures.base import Log, Pair, load_pair


@dataclass(frozen=True)
class RoleOptions:
    to: str
    dry_run: bool = False
    kubeconfig: Path | None = None
    timeout: float = 120
    force: bool = False  # take over an expired lease
    accept_data_loss: bool = False  # failover: promote although the target has not replayed what the old site holds


def _confirm(ask: Callable[[str], bool]) -> Callable[[str], None]:
    def confirm(question: str) -> None:
        if not ask(question):
            raise RolegenError("aborted: nothing was changed")

    return confirm


def lease_for(pair: Pair, operation: str, *, force: bool, old_may_be_gone: bool = False) -> Lease:
    stores = [pair.store(pair.to)]
    other = pair.store(pair.other)
    try:
        other.read()
        stores.append(other)
    except ClusterUnreachable:
        if not old_may_be_gone:
            raise
        pair.log(f"   {pair.other.environment}: API unreachable, the lease is taken on {pair.to.environment} only")
    return Lease(stores, Holder(operation), force=force, log=pair.log)


def _run(env_dir: Path, opts: RoleOptions, log: Log, verb: str, body: Callable[[Pair], Any]) -> Any:
    pair = load_pair(env_dir, opts.to, kubeconfig=opts.kubeconfig, log=log)
    lease = lease_for(pair, f"{verb} --to {opts.to}", force=opts.force, old_may_be_gone=verb == "failover")
    with lease.held():
        pair.lease = lease
        return body(pair)


def run_switchover(env_dir: Path, opts: RoleOptions, ask: Callable[[str], bool], log: Log) -> Any:
    if opts.dry_run:
        return switchover.dry_run(load_pair(env_dir, opts.to, log=log))
    return _run(env_dir, opts, log, "switchover",
                lambda pair: switchover.run(pair, confirm=_confirm(ask), timeout=opts.timeout))


def run_failover(env_dir: Path, opts: RoleOptions, ask: Callable[[str], bool], log: Log) -> Any:
    if opts.dry_run:
        return failover.dry_run(load_pair(env_dir, opts.to, log=log))
    return _run(env_dir, opts, log, "failover", lambda pair: failover.run(
        pair, confirm=_confirm(ask), timeout=opts.timeout, accept_data_loss=opts.accept_data_loss))


def run_failback(
    env_dir: Path, opts: RoleOptions, method: failback.Method, ask: Callable[[str], bool], log: Log
) -> Any:
    if opts.dry_run:
        return failback.dry_run(load_pair(env_dir, opts.to, log=log))
    return _run(env_dir, opts, log, "failback",
                lambda pair: failback.run(pair, method=method, confirm=_confirm(ask), timeout=opts.timeout))


def run_reseed(env_dir: Path, opts: RoleOptions, ask: Callable[[str], bool], log: Log) -> Any:
    """Re-seed the standby site `opts.to` in place (a lost DR slot): its peer keeps leading."""
    if opts.dry_run:
        return reseed.dry_run(load_pair(env_dir, opts.to, log=log))
    return _run(env_dir, opts, log, "reseed",
                lambda pair: reseed.run(pair, confirm=_confirm(ask), timeout=opts.timeout))

"""`rolegen switchover|failover|failback`: thin entry points over rolegen.procedures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.errors import RolegenError
from rolegen.procedures import failback, failover, switchover
from rolegen.procedures.base import Log, load_pair


@dataclass(frozen=True)
class RoleOptions:
    to: str
    dry_run: bool = False
    kubeconfig: Path | None = None
    timeout: float = 120


def _confirm(ask: Callable[[str], bool]) -> Callable[[str], None]:
    def confirm(question: str) -> None:
        if not ask(question):
            raise RolegenError("aborted: nothing was changed")

    return confirm


def run_switchover(env_dir: Path, opts: RoleOptions, ask: Callable[[str], bool], log: Log) -> Any:
    pair = load_pair(env_dir, opts.to, kubeconfig=opts.kubeconfig, log=log)
    if opts.dry_run:
        return switchover.dry_run(pair)
    return switchover.run(pair, confirm=_confirm(ask), timeout=opts.timeout)


def run_failover(env_dir: Path, opts: RoleOptions, ask: Callable[[str], bool], log: Log) -> Any:
    pair = load_pair(env_dir, opts.to, kubeconfig=opts.kubeconfig, log=log)
    if opts.dry_run:
        return failover.dry_run(pair)
    return failover.run(pair, confirm=_confirm(ask), timeout=opts.timeout)


def run_failback(
    env_dir: Path, opts: RoleOptions, method: failback.Method, ask: Callable[[str], bool], log: Log
) -> Any:
    pair = load_pair(env_dir, opts.to, kubeconfig=opts.kubeconfig, log=log)
    if opts.dry_run:
        return failback.dry_run(pair)
    return failback.run(pair, method=method, confirm=_confirm(ask), timeout=opts.timeout)

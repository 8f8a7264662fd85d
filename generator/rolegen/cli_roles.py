"""CLI wiring of `status`, the role changes (switchover, failover, failback) and `reseed`; registered by cli.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rolegen import console
from rolegen.cli_options import (
    DirOption,
    DryRunOption,
    ForceOption,
    FormatOption,
    KubeClientOption,
    KubeconfigOption,
    TimeoutOption,
    ToOption,
    YesOption,
)
from rolegen.console import Format


def status(
    *,
    fmt: FormatOption = Format.pretty,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    directory: DirOption = Path("environments"),
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C (exit 130): in place on a terminal.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between --watch refreshes.", min=0.5)] = 2.0,
) -> None:
    """Both sites side by side: members, roles, timelines, LSNs, pending fence, divergence.

    Exit 0 when both sites answer, report their declared roles, no fence is pending and neither diverged; else 1."""
    from rolegen.commands import status as status_cmd

    if watch:
        from rolegen import progress

        def frame() -> str:
            result = status_cmd.run(directory, kubeconfig)
            if fmt is Format.pretty:
                return "\n".join(result.lines()) + "\n"
            return json.dumps(result.as_dict(), sort_keys=True) + "\n"  # one object per line with -f json|yaml

        console.run(lambda: progress.watch(frame, interval))
        return
    result = console.run(lambda: status_cmd.run(directory, kubeconfig))
    console.show(result, fmt, ok=result.healthy)


def _role_change(
    verb: str,
    to: str,
    dry_run: bool,
    yes: bool,
    timeout: float,
    kubeconfig: Path | None,
    directory: Path,
    force: bool,
    method: str = "auto",
    accept_data_loss: bool = False,
) -> None:
    from rolegen import prompt
    from rolegen.commands import roles

    opts = roles.RoleOptions(to=to, dry_run=dry_run, kubeconfig=kubeconfig, timeout=timeout, force=force,
                             accept_data_loss=accept_data_loss)
    ask = lambda question: prompt.confirm(question, yes=yes)  # noqa: E731
    runners = {
        "switchover": lambda: roles.run_switchover(directory, opts, ask, typer.echo),
        "failover": lambda: roles.run_failover(directory, opts, ask, typer.echo),
        "failback": lambda: roles.run_failback(directory, opts, method, ask, typer.echo),  # type: ignore[arg-type]
        "reseed": lambda: roles.run_reseed(directory, opts, ask, typer.echo),
    }
    result = console.run(runners[verb])
    if isinstance(result, str):
        typer.echo(result, nl=False)
    elif getattr(result, "timings", None):
        typer.echo(f"{verb} {'of' if verb == 'reseed' else 'to'} {to} done; timings (s): {result.timings}")


def switchover(
    *,
    to: ToOption,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = 120,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    directory: DirOption = Path("environments"),
    force: ForceOption = False,
) -> None:
    """Planned: demote the leader site, wait for the LSN gate, promote --to; zero acknowledged writes lost."""
    _role_change("switchover", to, dry_run, yes, timeout, kubeconfig, directory, force)


def failover(
    *,
    to: ToOption,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = 120,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    directory: DirOption = Path("environments"),
    force: ForceOption = False,
    accept_data_loss: Annotated[
        bool,
        typer.Option("--accept-data-loss", help="Promote even if --to lacks WAL the fenced old site holds."),
    ] = False,
) -> None:
    """Unplanned: the leader site failed. Fence it first when its API answers, then promote --to."""
    _role_change("failover", to, dry_run, yes, timeout, kubeconfig, directory, force,
                 accept_data_loss=accept_data_loss)


def failback(
    *,
    to: ToOption,
    method: Annotated[str, typer.Option("--method", help="rewind | reseed | auto.")] = "auto",
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = 300,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    directory: DirOption = Path("environments"),
    force: ForceOption = False,
) -> None:
    """Bring the old site back as a standby (pg_rewind, or re-seed), then switch over back to it."""
    if method not in ("rewind", "reseed", "auto"):
        raise typer.BadParameter("must be rewind, reseed or auto", param_hint="--method")
    _role_change("failback", to, dry_run, yes, timeout, kubeconfig, directory, force, method)


def reseed(
    *,
    env: Annotated[str, typer.Option("--env", "-e", help="The standby site to wipe and clone again.")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = 300,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    directory: DirOption = Path("environments"),
    force: ForceOption = False,
) -> None:
    """Re-seed a standby site in place (its DR slot was lost); its peer keeps leading, no role changes."""
    _role_change("reseed", env, dry_run, yes, timeout, kubeconfig, directory, force)

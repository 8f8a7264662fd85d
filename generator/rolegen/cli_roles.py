"""CLI wiring of `status` and the role changes (switchover, failover, failback); registered by cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rolegen import console
from rolegen.cli_options import (
    DirOption,
    DryRunOption,
    FormatOption,
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
    directory: DirOption = Path("environments"),
) -> None:
    """Both sites side by side: members, roles, timelines, LSNs, declared vs live role, pending fence."""
    from rolegen.commands import status as status_cmd

    result = console.run(lambda: status_cmd.run(directory, kubeconfig))
    if fmt is Format.pretty:
        typer.echo("\n".join(result.lines()))
    else:
        console.emit_data(result.as_dict(), fmt)


def _role_change(
    verb: str,
    to: str,
    dry_run: bool,
    yes: bool,
    timeout: float,
    kubeconfig: Path | None,
    directory: Path,
    method: str = "auto",
) -> None:
    from rolegen import prompt
    from rolegen.commands import roles

    opts = roles.RoleOptions(to=to, dry_run=dry_run, kubeconfig=kubeconfig, timeout=timeout)
    ask = lambda question: prompt.confirm(question, yes=yes)  # noqa: E731
    runners = {
        "switchover": lambda: roles.run_switchover(directory, opts, ask, typer.echo),
        "failover": lambda: roles.run_failover(directory, opts, ask, typer.echo),
        "failback": lambda: roles.run_failback(directory, opts, method, ask, typer.echo),  # type: ignore[arg-type]
    }
    result = console.run(runners[verb])
    if isinstance(result, str):
        typer.echo(result, nl=False)
    elif getattr(result, "timings", None):
        typer.echo(f"{verb} to {to} done; timings (s): {result.timings}")


def switchover(
    *,
    to: ToOption,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = 120,
    kubeconfig: KubeconfigOption = None,
    directory: DirOption = Path("environments"),
) -> None:
    """Planned: demote the leader site, wait for the LSN gate, promote --to; zero acknowledged writes lost."""
    _role_change("switchover", to, dry_run, yes, timeout, kubeconfig, directory)


def failover(
    *,
    to: ToOption,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = 120,
    kubeconfig: KubeconfigOption = None,
    directory: DirOption = Path("environments"),
) -> None:
    """Unplanned: the leader site is down. Promote --to and fence the old site."""
    _role_change("failover", to, dry_run, yes, timeout, kubeconfig, directory)


def failback(
    *,
    to: ToOption,
    method: Annotated[str, typer.Option("--method", help="rewind | reseed | auto.")] = "auto",
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    timeout: TimeoutOption = 300,
    kubeconfig: KubeconfigOption = None,
    directory: DirOption = Path("environments"),
) -> None:
    """Bring the old site back as a standby (pg_rewind, or re-seed), then switch over back to it."""
    if method not in ("rewind", "reseed", "auto"):
        raise typer.BadParameter("must be rewind, reseed or auto", param_hint="--method")
    _role_change("failback", to, dry_run, yes, timeout, kubeconfig, directory, method)

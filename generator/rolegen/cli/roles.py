"""CLI wiring of the role changes (switchover, failover, failback), `reseed`, and `guard` (the standby site's witness
guard, which fails over on its own); registered by rolegen.cli."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rolegen import console
from rolegen.cli.options import (
    DirOption,
    DryRunOption,
    ForceOption,
    FormatOption,
    KubeClientOption,
    KubeconfigOption,
    OneEnvOption,
    TimeoutOption,
    ToOption,
    YesOption,
)
from rolegen.console import Format


def _role_change(
    verb: str,
    to: str,
    dry_run: bool,
    yes: bool,
    timeout: float,
    kubeconfig: Path | None,
    directory: Path,
    force: bool,
    fmt: Format,
    method: str = "auto",
    accept_data_loss: bool = False,
    old_site_down: bool = False,
) -> None:
    from rolegen import prompt
    from rolegen.commands import roles as roles_cmd

    opts = roles_cmd.RoleOptions(to=to, dry_run=dry_run, kubeconfig=kubeconfig, timeout=timeout, force=force,
                                 accept_data_loss=accept_data_loss, old_site_down=old_site_down)
    machine = fmt is not Format.pretty
    ask = lambda question: prompt.confirm(question, yes=yes, machine_output=machine)  # noqa: E731
    # With -f json|yaml stdout carries the one document; the runbook's progress goes to stderr.
    log = (lambda line: typer.echo(line, err=True)) if machine else typer.echo
    runners = {
        "switchover": lambda: roles_cmd.run_switchover(directory, opts, ask, log),
        "failover": lambda: roles_cmd.run_failover(directory, opts, ask, log),
        "failback": lambda: roles_cmd.run_failback(directory, opts, method, ask, log),  # type: ignore[arg-type]
        "reseed": lambda: roles_cmd.run_reseed(directory, opts, ask, log),
    }
    console.show(console.run(runners[verb]), fmt)


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
    fmt: FormatOption = Format.pretty,
) -> None:
    """Planned: demote the leader site, wait for the LSN gate, promote --to; zero acknowledged writes lost."""
    _role_change("switchover", to, dry_run, yes, timeout, kubeconfig, directory, force, fmt)


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
    old_site_down: Annotated[
        bool,
        typer.Option("--old-site-down", help="You powered off or fenced the old site by other means: promote --to "
                     "although the old site's API does not answer and --to still streams (or receives WAL) from it. "
                     "Without it that is refused: the old site's PostgreSQL is alive."),
    ] = False,
    fmt: FormatOption = Format.pretty,
) -> None:
    """Unplanned: the leader site failed. Fence it first when its API answers, then promote --to."""
    _role_change("failover", to, dry_run, yes, timeout, kubeconfig, directory, force, fmt,
                 accept_data_loss=accept_data_loss, old_site_down=old_site_down)


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
    fmt: FormatOption = Format.pretty,
) -> None:
    """Bring the old site back as a standby (pg_rewind, or re-seed), then switch over back to it."""
    if method not in ("rewind", "reseed", "auto"):
        raise typer.BadParameter("must be rewind, reseed or auto", param_hint="--method")
    _role_change("failback", to, dry_run, yes, timeout, kubeconfig, directory, force, fmt, method)


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
    fmt: FormatOption = Format.pretty,
) -> None:
    """Re-seed a standby site in place (its DR slot was lost); its peer keeps leading, no role changes."""
    _role_change("reseed", env, dry_run, yes, timeout, kubeconfig, directory, force, fmt)


def guard(
    *,
    env: OneEnvOption,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT the leader guard's promise requests reach (through the "
                          "tunnel); port 0: any free one.", show_default=True)
    ] = "0.0.0.0:8099",
    every: Annotated[
        float, typer.Option("--every", help="Seconds between two looks at the witness and this site.", min=0.1,
                            show_default=True)
    ] = 1.0,
    timeout: TimeoutOption = 120,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    directory: DirOption = Path("environments"),
) -> None:
    """The standby site's witness guard (witness.mode automatic): grant the leader's promises, watch the witness
    Lease, and fail over to --env when the rules allow it (docs/witness.md). Runs until SIGTERM (exit 0)."""
    from rolegen.commands import guard as guard_cmd
    from rolegen.commands import roles as roles_cmd

    def log(line: str) -> None:  # a long-running process's log: each line with its time (UTC)
        from datetime import UTC, datetime

        typer.echo(f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z {line}", err=True)

    # The rules decided, on evidence, within the spec's loss bound (lag_limit against the leader's last published
    # position, or sync): the failover's own waits for evidence (the old site's API and lock, what it still
    # sends) last `evidence` at most, and it promotes with what arrived.
    def promote(evidence: float) -> None:  # the failover steps, answered yes: nobody is asked at 3 a.m.
        opts = roles_cmd.RoleOptions(to=env, kubeconfig=kubeconfig, timeout=timeout, accept_data_loss=True,
                                     evidence_timeout=evidence)
        for line in roles_cmd.run_failover(directory, opts, lambda _question: True, log).lines():
            log(line)  # its timings

    def run() -> guard_cmd.GuardResult:
        loop = guard_cmd.standby_loop(directory, env, promote, log, kubeconfig=kubeconfig)
        return guard_cmd.run(loop, guard_cmd.parse_listen(listen), every=every,
                             ready=lambda at: log(f"witness-guard: serving promises on {at[0]}:{at[1]}"))

    console.show(console.run(run))

"""CLI wiring of the verbs that read or converge live sites through kubectl and Helm: status, exporter, history,
diff, apply; registered by rolegen.cli."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rolegen import console
from rolegen.cli.options import (
    AllOption,
    ContextOption,
    DirOption,
    DryRunOption,
    EnvOption,
    FormatOption,
    KubeClientOption,
    KubeconfigOption,
    OneEnvOption,
    StatusFormatOption,
    TimeoutOption,
    YesOption,
)
from rolegen.console import Format, StatusFormat

if TYPE_CHECKING:
    from rolegen.prometheus import Family


def status(
    *,
    fmt: StatusFormatOption = StatusFormat.pretty,
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
            if fmt is StatusFormat.pretty:
                return "\n".join(result.lines()) + "\n"
            if fmt is StatusFormat.prometheus:
                return result.metrics()
            return json.dumps(result.as_dict(), sort_keys=True) + "\n"  # one object per line with -f json|yaml

        console.run(lambda: progress.watch(frame, interval))
        return
    result = console.run(lambda: status_cmd.run(directory, kubeconfig))
    if fmt is StatusFormat.prometheus:
        typer.echo(result.metrics(), nl=False)  # health is in the metrics: a textfile job must not stop on it
        return
    console.show(result, Format(fmt.value), ok=result.healthy)


def exporter(
    *,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to serve /metrics and /healthz on ([::]:PORT for IPv6; "
                          "port 0: any free one).", show_default=True)
    ] = "0.0.0.0:9847",
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between reads of the pair; a scrape gets the last one.",
                            min=1, show_default=True)
    ] = 15.0,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    directory: DirOption = Path("environments"),
) -> None:
    """Serve the pair's metrics (those of `status -f prometheus`) on /metrics for Prometheus, read in the
    background every --interval; plus the exporter's own (reads, errors, staleness). Runs until SIGTERM (exit 0)
    or Ctrl-C (130)."""
    from rolegen.commands import exporter as exporter_cmd
    from rolegen.commands import status as status_cmd
    from rolegen.offline.workspace import load_workspace

    def read() -> list[Family]:  # what `status -f prometheus` prints, as families (verbs do not import verbs)
        return status_cmd.pair_metrics(status_cmd.run(directory, kubeconfig))

    def log(line: str) -> None:
        typer.echo(line, err=True)

    console.show(console.run(lambda: exporter_cmd.run(
        read, listen, interval, log=log, check=lambda: load_workspace(directory))))


def history(
    *,
    fmt: FormatOption = Format.pretty,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    directory: DirOption = Path("environments"),
) -> None:
    """The role changes recorded on the clusters (both sites, merged; newest last), with the sites holding each.

    Exit 0 when at least one site was read (a site that was not is shown as unreadable); else 1."""
    from rolegen.commands import history as history_cmd

    result = console.run(lambda: history_cmd.run(directory, kubeconfig))
    console.show(result, fmt, ok=result.ok)


def diff(
    *,
    env: EnvOption = [],  # noqa: B006 - Typer reads the default, never mutates it
    all_envs: AllOption = False,
    fmt: FormatOption = Format.pretty,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when there is drift (helm-diff convention).")
    ] = False,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    context: ContextOption = None,
    directory: DirOption = Path("environments"),
) -> None:
    """Rendered values, DCS config and role against the live site (read-only)."""
    from rolegen.commands import diff as diff_cmd

    opts = diff_cmd.DiffOptions(envs=env, all_envs=all_envs, kubeconfig=kubeconfig, context=context)
    result = console.run(lambda: diff_cmd.run(directory, opts))
    console.show(result, fmt)
    if result.lost:  # after the output: the differences are still shown
        raise console.fail(result.lost_error())
    if detailed_exitcode and result.drift:
        raise typer.Exit(2)


def apply(
    *,
    env: OneEnvOption,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove hand-set keys of the config annotation (kept by default).")
    ] = False,
    timeout: TimeoutOption = 300.0,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    context: ContextOption = None,
    directory: DirOption = Path("environments"),
) -> None:
    """Converge one site: helm upgrade --install if values differ, then the config annotation, then wait for
    Patroni to report the declared role (--timeout)."""
    from rolegen import prompt
    from rolegen.commands import apply as apply_cmd

    opts = apply_cmd.ApplyOptions(
        env=env, kubeconfig=kubeconfig, context=context, dry_run=dry_run, prune=prune, timeout=timeout
    )
    hooks = apply_cmd.Hooks(
        show=lambda plan: console.show(plan),
        confirm=lambda question: prompt.confirm(question, yes=yes),
        progress=typer.echo,
    )
    console.show(console.run(lambda: apply_cmd.run(directory, opts, hooks)))

"""CLI wiring of `rolegen lab up|status|down` (the `lab` extra); added to the root app by cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rolegen import console
from rolegen.cli_options import DirOption, FormatOption, K8sBinOption, LabRootOption
from rolegen.console import Format

lab_app = typer.Typer(
    help="Rehearse on a laptop: both sites with real Patroni, PostgreSQL, Helm and kubectl (needs the lab extra).",
    no_args_is_help=True,
)


@lab_app.command("up")
def lab_up(
    *, directory: DirOption = Path("environments"), root: LabRootOption = None, k8s_bin: K8sBinOption = None
) -> None:
    """Bring up both sites from the environments and print how to reach them."""
    from rolegen.commands import lab as lab_cmd

    state, changed = console.run(lambda: lab_cmd.up(directory, root or lab_cmd.default_root(), k8s_bin=k8s_bin))
    console.print_lab(state, changed)


@lab_app.command("build")
def lab_build(*, force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False) -> None:
    """Build the pinned kube-apiserver, kube-controller-manager and etcd from Go modules (needs Go)."""
    from rolegen.lab import k8sbin

    if force or not k8sbin.cache_dir().is_dir():
        typer.echo(f"building Kubernetes {k8sbin.K8S_VERSION} and etcd {k8sbin.ETCD_VERSION} (cold: minutes)")
    result = console.run(lambda: k8sbin.build(force=force))
    if result.built:
        typer.echo(f"built in {result.seconds:.0f}s: {result.directory}")
    else:
        typer.echo(f"Not changed: {result.directory}")


@lab_app.command("status")
def lab_status(*, root: LabRootOption = None, fmt: FormatOption = Format.pretty) -> None:
    """Members of both lab sites with their live roles."""
    from rolegen.commands import lab as lab_cmd

    state = console.run(lambda: lab_cmd.status(root or lab_cmd.default_root()))
    console.emit_data(state, fmt) if fmt is not Format.pretty else console.print_lab(state, None)


@lab_app.command("down")
def lab_down(*, root: LabRootOption = None) -> None:
    """Stop every lab process and remove the lab directory."""
    from rolegen.commands import lab as lab_cmd

    stopped = console.run(lambda: lab_cmd.down(root or lab_cmd.default_root()))
    typer.echo("lab stopped" if stopped else "Not changed: no lab was running")

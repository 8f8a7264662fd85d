"""CLI wiring of `rolegen import` (adopt a live site); registered by cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rolegen import console
from rolegen.cli_options import DirOption, KubeClientOption, KubeconfigOption


def import_site(
    *,
    env: Annotated[str, typer.Option("--env", "-e", help="Name of the environment to write (environments/NAME.yaml).")],
    context: Annotated[str, typer.Option("--context", help="kubeconfig context of the live site.")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the live site.")],
    release: Annotated[str, typer.Option("--release", help="Helm release name.")] = "patroni",
    peer_env: Annotated[str | None, typer.Option("--peer-env", help="Peer environment (if not inferable).")] = None,
    peer_host: Annotated[str | None, typer.Option("--peer-host", help="Peer host (if not inferable).")] = None,
    peer_port: Annotated[
        int | None, typer.Option("--peer-port", help="Peer port (if not inferable).", min=1, max=65535)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing spec.")] = False,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    directory: DirOption = Path("environments"),
) -> None:
    """Write environments/NAME.yaml from a live site (Helm values, <scope>-config, StatefulSet, Services, TSC)."""
    from rolegen.commands import import_site as import_cmd

    opts = import_cmd.ImportOptions(
        env=env, namespace=namespace, context=context, release=release, peer_env=peer_env, peer_host=peer_host,
        peer_port=peer_port, force=force, kubeconfig=kubeconfig,
    )
    result = console.run(lambda: import_cmd.run(directory, opts))
    typer.echo("\n".join(result.lines()))

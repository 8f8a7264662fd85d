"""CLI wiring of the verbs that need no cluster to run from specs (validate, render, check-schemas), and of
`import`, which writes a spec from a live site; registered by rolegen.cli."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rolegen import console
from rolegen.cli.options import AllOption, DirOption, EnvOption, FormatOption, KubeClientOption, KubeconfigOption
from rolegen.console import Format


def render(
    *,
    env: EnvOption = [],  # noqa: B006 - Typer reads the default, never mutates it
    all_envs: AllOption = False,
    role: Annotated[
        str | None,
        typer.Option("--role", help="Declare a new role (leader|standby-leader|standby): rewrites the spec."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 with a diff if output is stale.")
    ] = False,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Print the generated files instead of writing them.")
    ] = False,
    reseed: Annotated[
        bool, typer.Option("--reseed", help="Print the re-seed patches (only for a site whose members were all wiped).")
    ] = False,
    fmt: FormatOption = Format.pretty,
    directory: DirOption = Path("environments"),
) -> None:
    """Render Helm values and ConfigMap patches from environments/<env>.yaml."""
    from rolegen.commands import render as render_cmd

    opts = render_cmd.RenderOptions(
        envs=env,
        all_envs=all_envs,
        role=role,
        check=check,
        stdout=stdout,
        reseed=reseed,
        write=fmt is Format.pretty,
    )
    result = console.run(lambda: render_cmd.run(directory, opts))
    console.warn(result.warnings)
    console.show(result, fmt)


def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files to check (default: all specs and generated files).")
    ] = None,
    *,
    directory: DirOption = Path("environments"),
    fmt: FormatOption = Format.pretty,
) -> None:
    """Validate specs and generated files against the JSON Schemas and the pair rules."""
    from rolegen.commands import validate as validate_cmd

    result = console.run(lambda: validate_cmd.run(directory, paths or []))
    if fmt is Format.pretty:
        console.warn(result.problems)  # with -f json|yaml they are part of the data
    console.show(result, fmt)


def check_schemas(
    paths: Annotated[list[Path] | None, typer.Argument(help="Schema files (default: those rolegen ships).")] = None,
) -> None:
    """Check JSON Schemas against the 2020-12 metaschema."""
    from rolegen.commands import check_schemas as check_schemas_cmd

    console.show(console.run(lambda: check_schemas_cmd.run(paths or [])))


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
    console.show(console.run(lambda: import_cmd.run(directory, opts)))

"""Typer wiring only: options in, one call into rolegen.commands, results out. No logic lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rolegen import __version__, cli_import, cli_lab, cli_roles, console
from rolegen.cli_options import (
    EXIT_CODES,
    AllOption,
    ContextOption,
    DirOption,
    EnvOption,
    FormatOption,
    KubeClientOption,
    KubeconfigOption,
)
from rolegen.console import Format

# Each command imports what it uses inside its function (jsonschema, jinja2, yaml, deepdiff, the cluster
# clients), so `rolegen --version` and `--help` import none of them: bench/startup.py measures it.

app = typer.Typer(
    name="rolegen",
    help=f"Role-based Helm values and Patroni DCS patches for a two-site PostgreSQL pair.\n\n{EXIT_CODES}",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=True,  # --install-completion / --show-completion (README: Shell completion)
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rolegen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    *,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Role-based configuration for a two-site Patroni pair."""


@app.command("render", epilog=EXIT_CODES)
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
    if fmt is not Format.pretty:
        data = [r.as_dict() for r in result.rendered]
        console.emit_data(data[0] if len(data) == 1 else data, fmt)
    elif result.text:
        typer.echo(result.text, nl=False)
    else:
        console.print_render(result)


@app.command("validate", epilog=EXIT_CODES)
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
    if fmt is not Format.pretty:
        console.emit_data({"files": result.files, "problems": [vars(p) for p in result.problems]}, fmt)
        return
    console.warn(result.problems)
    typer.echo(f"ok: {len(result.files)} file(s) valid")


@app.command("check-schemas", epilog=EXIT_CODES)
def check_schemas(
    paths: Annotated[list[Path] | None, typer.Argument(help="Schema files (default: those rolegen ships).")] = None,
) -> None:
    """Check JSON Schemas against the 2020-12 metaschema."""
    from rolegen.commands import check_schemas as check_schemas_cmd

    files = console.run(lambda: check_schemas_cmd.run(paths or []))
    typer.echo(f"ok: {len(files)} schema(s) valid")


# --- diff / apply (cluster verbs) ---------------------------------------------------------------------------
@app.command("diff", epilog=EXIT_CODES)
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
    if fmt is Format.pretty:
        for line in result.lines():
            typer.echo(line)
    else:
        console.emit_data(result.as_dict(), fmt)
    if result.lost:  # after the output: the differences are still shown
        raise console.fail(result.lost_error())
    if detailed_exitcode and result.drift:
        raise typer.Exit(2)


@app.command("apply", epilog=EXIT_CODES)
def apply(
    *,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment name.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove hand-set keys of the config annotation (kept by default).")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for Patroni to report the declared role.", min=0)
    ] = 300.0,
    kubeconfig: KubeconfigOption = None,
    kube_client: KubeClientOption = None,
    context: ContextOption = None,
    directory: DirOption = Path("environments"),
) -> None:
    """Converge one site: helm upgrade --install if values differ, then the config annotation, then wait."""
    from rolegen import prompt
    from rolegen.commands import apply as apply_cmd
    from rolegen.plan import plan_lines

    opts = apply_cmd.ApplyOptions(
        env=env, kubeconfig=kubeconfig, context=context, dry_run=dry_run, prune=prune, timeout=timeout
    )
    hooks = apply_cmd.Hooks(
        show=lambda plan: typer.echo("\n".join(plan_lines(plan))),
        confirm=lambda question: prompt.confirm(question, yes=yes),
        progress=typer.echo,
    )
    result = console.run(lambda: apply_cmd.run(directory, opts, hooks))
    for line in apply_cmd.summary(result):
        typer.echo(line)


# --- end diff / apply ---------------------------------------------------------------------------------------

# --- status and role changes (rolegen.procedures) ----------------------------------------------------------
app.command("status", epilog=EXIT_CODES)(cli_roles.status)
app.command("switchover", epilog=EXIT_CODES)(cli_roles.switchover)
app.command("failover", epilog=EXIT_CODES)(cli_roles.failover)
app.command("failback", epilog=EXIT_CODES)(cli_roles.failback)
app.command("reseed", epilog=EXIT_CODES)(cli_roles.reseed)
app.command("import", epilog=EXIT_CODES)(cli_import.import_site)
app.add_typer(cli_lab.lab_app, name="lab")


def main() -> None:
    app()

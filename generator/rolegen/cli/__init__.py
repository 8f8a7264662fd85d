"""The Typer app: wiring only. Each verb group lives in its own module (offline, cluster, roles; `lab` comes
from the lab's wing, rolegen_lab); the shared option aliases are in rolegen.cli.options. Commands return results
(rolegen.results), which rolegen.console prints; errors become exit codes there too."""

from __future__ import annotations

from typing import Annotated

import typer

from rolegen import __version__
from rolegen.cli import cluster, offline, roles
from rolegen.cli.options import DRIFT_EXIT_CODE, EXIT_CODES

# Each command imports what it uses inside its function (jsonschema, jinja2, yaml, deepdiff, the cluster
# clients), so `rolegen --version` and `--help` import none of them: bench/startup.py measures it.

app = typer.Typer(
    name="rolegen",
    help="Role-based Helm values and Patroni DCS patches for a two-site PostgreSQL pair.\n\n"
    f"{EXIT_CODES}\n\n{DRIFT_EXIT_CODE}",
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


# Registration order is the order `rolegen --help` lists them in.
app.command("render", epilog=EXIT_CODES)(offline.render)
app.command("validate", epilog=EXIT_CODES)(offline.validate)
app.command("check-schemas", epilog=EXIT_CODES)(offline.check_schemas)
app.command("diff", epilog=f"{EXIT_CODES}\n\n{DRIFT_EXIT_CODE}")(cluster.diff)
app.command("apply", epilog=EXIT_CODES)(cluster.apply)
app.command("status", epilog=EXIT_CODES)(cluster.status)
app.command("exporter", epilog=EXIT_CODES)(cluster.exporter)
app.command("history", epilog=EXIT_CODES)(cluster.history)
app.command("switchover", epilog=EXIT_CODES)(roles.switchover)
app.command("failover", epilog=EXIT_CODES)(roles.failover)
app.command("failback", epilog=EXIT_CODES)(roles.failback)
app.command("reseed", epilog=EXIT_CODES)(roles.reseed)
app.command("guard", epilog=EXIT_CODES)(roles.guard)
app.command("import", epilog=EXIT_CODES)(offline.import_site)


def _add_wings() -> None:
    """Verb groups other packages add through the `rolegen.cli` entry point: the lab (rolegen_lab), when
    installed. rolegen depends on none of them."""
    from importlib.metadata import entry_points

    for point in sorted(entry_points(group="rolegen.cli"), key=lambda p: p.name):
        app.add_typer(point.load(), name=point.name)


_add_wings()


def main() -> None:
    app()

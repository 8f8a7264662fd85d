"""Printing results and errors; the only place that knows `error: ... / hint: ...` and the output formats."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import typer

from rolegen.errors import Problem, RolegenError, ValidationFailed


class Format(StrEnum):
    pretty = "pretty"
    json = "json"
    yaml = "yaml"


def emit_data(data: Any, fmt: Format) -> None:
    if fmt is Format.yaml:
        import yaml  # only this format needs it

        typer.echo(yaml.safe_dump(data, sort_keys=True, default_flow_style=False), nl=False)
    else:
        typer.echo(json.dumps(data, sort_keys=True, indent=2))


def show(result: Any, fmt: Format, *, ok: bool = True) -> None:
    """A result with `lines()` (pretty) and `as_dict()` (json/yaml), printed as asked; exit 1 unless `ok`."""
    if fmt is Format.pretty:
        typer.echo("\n".join(result.lines()))
    else:
        emit_data(result.as_dict(), fmt)
    if not ok:
        raise typer.Exit(1)


def problem_lines(problems: list[Problem]) -> Iterator[str]:
    for p in problems:
        yield str(p) if p.severity == "error" else f"warning: {p}"


def warn(problems: list[Problem]) -> None:
    for line in problem_lines([p for p in problems if p.severity != "error"]):
        typer.echo(line, err=True)


def fail(exc: RolegenError) -> typer.Exit:
    """Print a RolegenError the one way users see errors and return the Exit to raise."""
    if isinstance(exc, ValidationFailed):
        for line in problem_lines(exc.problems):
            typer.echo(line, err=True)
    extra = getattr(exc, "changes", None)
    if extra:  # stale output: the diff is the useful part, on stdout so it can be piped to `patch`
        for change in extra:
            typer.echo(change.diff(), nl=False)
    typer.echo(f"error: {exc.message}", err=True)
    if exc.hint:
        typer.echo(f"hint: {exc.hint}", err=True)
    return typer.Exit(exc.exit_code)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Map RolegenError to its exit code and Ctrl-C to 130, without a traceback."""
    try:
        yield
    except RolegenError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        raise typer.Exit(130) from None


def run(fn: Callable[[], Any]) -> Any:
    with errors_to_exit():
        return fn()


def print_render(result: Any) -> None:
    if result.role_change:
        env, old, new = result.role_change
        typer.echo(f"{env}: role {old} -> {new}" if old != new else f"{env}: role already {new}")
    for change in result.changes:
        typer.echo(f"{change.status:9} {change.display}")
    if result.changes and all(c.status == "identical" for c in result.changes):
        typer.echo("Not changed")


def print_lab(state: dict[str, Any], changed: bool | None) -> None:
    if changed is False:
        typer.echo("Not changed: the lab is already up")
    typer.echo(f"export KUBECONFIG={state['kubeconfig']}")
    typer.echo(f"# lab copy of the specs (peer addresses adapted): rolegen --dir {state['environments']} ...")
    for name, site in sorted(state["sites"].items()):
        typer.echo(f"{name}: context {site['context']}, namespace {site['namespace']}, master {site['master']}")
        if site.get("faults"):
            typer.echo(f"  faults: {', '.join(site['faults'])}")
        for member, info in sorted(site["members"].items()):
            live = (
                f" {info.get('role')} ({info.get('state')}, timeline {info.get('timeline')})" if "role" in info else ""
            )
            typer.echo(f"  {member}: postgres 127.0.0.1:{info['postgres']}{live}")

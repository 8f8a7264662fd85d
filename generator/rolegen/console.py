"""Printing results and errors; the only place that knows `error: ... / hint: ...` and the output formats.

Results follow rolegen.results.Result (`lines()` / `as_dict()`); nothing here formats a particular verb."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, TypeVar

import typer

from rolegen.errors import Problem, RolegenError, ValidationFailed
from rolegen.results import Result


class Format(StrEnum):
    pretty = "pretty"
    json = "json"
    yaml = "yaml"


class StatusFormat(StrEnum):
    """status alone also speaks Prometheus's text format (node-exporter's textfile collector, a cron job)."""

    pretty = "pretty"
    json = "json"
    yaml = "yaml"
    prometheus = "prometheus"


def emit_data(data: Any, fmt: Format) -> None:
    if fmt is Format.yaml:
        import yaml  # only this format needs it

        typer.echo(yaml.safe_dump(data, sort_keys=True, default_flow_style=False), nl=False)
    else:
        typer.echo(json.dumps(data, sort_keys=True, indent=2))


def echo_lines(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


def show(result: Result, fmt: Format = Format.pretty, *, ok: bool = True) -> None:
    """A result printed as asked: its `lines()` (pretty) or its `as_dict()` (json/yaml); exit 1 unless `ok`."""
    if fmt is Format.pretty:
        echo_lines(result.lines())
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


def warning(message: str) -> None:
    """A warning about no file (e.g. the cluster client's version skew), on stderr like the others."""
    typer.echo(f"warning: {message}", err=True)


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


T = TypeVar("T")


def run(fn: Callable[[], T]) -> T:
    with errors_to_exit():
        return fn()


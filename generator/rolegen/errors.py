"""One error hierarchy: only the CLI turns these into `error: ...` / `hint: ...` and an exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class RolegenError(Exception):
    """Base of every error rolegen raises on purpose. Carries a message and an optional hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class WaitTimedOut(RolegenError):
    """A wait ran out of time. The only error a procedure may turn into a rollback, a refusal naming the next
    command, or a fallback: any other error (a failed read, a refused write) stops it with the state it left.
    `last` is the wait's last observation (what it saw when time ran out), when the wait keeps one."""

    def __init__(self, message: str, hint: str | None = None, *, what: str = "", last: object = None) -> None:
        super().__init__(message, hint)
        self.what = what
        self.last = last


class UsageError(RolegenError):
    """The command line asks for something impossible (exit 2, like Typer's own usage errors)."""

    exit_code = 2


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about one file at one JSON path; printed as `file::$.path: message`."""

    file: str
    path: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.file}::{self.path}: {self.message}"


class ValidationFailed(RolegenError):
    """Carries every problem found, not only the first."""

    def __init__(self, problems: Sequence[Problem], hint: str | None = None) -> None:
        self.problems = sorted(problems)
        super().__init__(f"{len(self.errors)} validation error(s)", hint)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

"""Confirmation before side effects: `--yes` proceeds, a terminal is asked, anything else fails with a hint.

Never prompt where nobody can answer (CI, pipes, machine-readable output): a prompt there would hang or eat
the first line of piped input.
"""

from __future__ import annotations

import sys

import typer

from rolegen.errors import RolegenError


def _interactive() -> bool:
    return sys.stdin.isatty()


def confirm(question: str, *, yes: bool, machine_output: bool = False) -> bool:
    """True to proceed; False when the user answered no. Raises when no one can be asked."""
    if yes:
        return True
    if machine_output:
        raise RolegenError("confirmation needed, and machine-readable output never prompts", hint="re-run with --yes")
    if not _interactive():
        raise RolegenError("confirmation needed, but stdin is not a terminal", hint="re-run with --yes")
    return typer.confirm(question, default=False)

"""Procedures as lists of steps, and the one runner that executes them.

A procedure's `steps(pair)` returns its `Step`s; `run()` passes the same list to `execute`, `--dry-run` to
`runbook`. So the runbook an operator reads is generated from the objects the run calls: they cannot drift.

Each step's `run` takes the procedure's run context (what earlier steps read or decided: states, the chosen
method, a promotion id); `applies` says, from that context, whether the step still has work (a resumed run skips
what a killed run already did; a decision rules a step out). A skipped step logs nothing. Waits, rollbacks and
guards stay inside a step's `run`: a rollback is its own except-path, not a step of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar("C")


def _always(_: object) -> bool:
    return True


@dataclass(frozen=True)
class Step(Generic[C]):
    """One runbook step: `title` is the imperative line (logged as `[n/total] title` when it runs), `detail` says
    what exactly happens and why, `when` (if any) the condition under which it runs, as the runbook prints it."""

    title: str
    detail: str
    run: Callable[[C], None]
    applies: Callable[[C], bool] = _always
    when: str | None = None

    @property
    def heading(self) -> str:
        return f"{self.title} ({self.when})" if self.when else self.title


D = TypeVar("D")
T = TypeVar("T")


class StepOrderError(RuntimeError):
    """A step read what an earlier step sets before that step ran: a bug in the runbook's order, never a state of
    the sites."""


class Later(Generic[T]):
    """A value one step sets for the steps after it (a site as read, a helper it started): typed for its readers,
    who need no Optional check or assert; reading it before it was set raises StepOrderError naming it."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._value: T | None = None
        self._set = False

    def set(self, value: T) -> T:
        self._value, self._set = value, True
        return value

    def get(self) -> T:
        if not self._set:
            raise StepOrderError(f"{self.what} was read before the step that sets it ran")
        return self._value  # type: ignore[return-value]  # set() stored a T


def within(step: Step[D], part: Callable[[C], D | None]) -> Step[C]:
    """`step` of a part a procedure shares (the handover), run on the part's context inside the procedure's:
    it applies once `part` holds a context (set by an earlier step) and the step applies to it."""

    def run(context: C) -> None:
        inner = part(context)
        assert inner is not None, f"{step.title}: its part was not started"
        step.run(inner)

    def applies(context: C) -> bool:
        inner = part(context)
        return inner is not None and step.applies(inner)

    return Step(step.title, step.detail, run, applies, step.when)


def runbook(name: str, steps: Sequence[Step[C]]) -> str:
    """The numbered runbook `--dry-run` prints."""
    lines = [f"{name}:"]
    for number, step in enumerate(steps, 1):
        lines.append(f"{number}. {step.heading}")
        lines.extend(f"   {line}" for line in step.detail.splitlines())
    return "\n".join(lines) + "\n"


def execute(steps: Sequence[Step[C]], context: C, log: Callable[[str], None]) -> None:
    """Run `steps` in order: each one that applies is logged as `[n/total] title`, then run. An exception stops
    the run where it is raised (the step has rolled back what it must); nothing after it runs."""
    total = len(steps)
    for number, step in enumerate(steps, 1):
        if step.applies(context):
            log(f"[{number}/{total}] {step.title}")
            step.run(context)

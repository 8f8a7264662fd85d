"""The one result protocol: every verb returns an object with `lines()` for people and `as_dict()` for
`-f json|yaml`; rolegen.console prints either. Verbs never print, the CLI never formats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Result(Protocol):
    def lines(self) -> list[str]:
        """Pretty output, one string per line (no trailing newlines); may be empty."""
        ...

    def as_dict(self) -> Any:
        """Plain data for JSON/YAML: dicts, lists, strings, numbers, None."""
        ...


def text_lines(text: str) -> list[str]:
    """`text` as lines: printing them one per line gives back `text` when it ends with a newline."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


@dataclass(frozen=True)
class Message:
    """A result that is one line of text (lab faults, `lab down`)."""

    text: str

    def lines(self) -> list[str]:
        return [self.text]

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.text}

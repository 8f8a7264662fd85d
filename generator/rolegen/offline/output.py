"""Write/compare layer, the only disk IO of render: compare rendered text with disk, write only what differs."""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Change:
    """One generated file: `old` is what disk holds (None: missing), `new` what it should hold (None: remove)."""

    path: Path
    display: str
    old: str | None
    new: str | None

    @property
    def status(self) -> str:
        if self.old == self.new:
            return "identical"
        if self.old is None:
            return "created"
        if self.new is None:
            return "removed"
        return "updated"

    def diff(self) -> str:
        old = (self.old or "").splitlines(keepends=True)
        new = (self.new or "").splitlines(keepends=True)
        lines = difflib.unified_diff(
            old,
            new,
            fromfile="/dev/null" if self.old is None else f"a/{self.display}",
            tofile="/dev/null" if self.new is None else f"b/{self.display}",
        )
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def plan(root: Path, files: dict[str, str], owned_dirs: list[str], display_base: str) -> list[Change]:
    """Compare `files` (relative to root) with disk; *.yaml files under `owned_dirs` not rendered are orphans."""
    changes = {rel: Change(root / rel, f"{display_base}/{rel}", _read(root / rel), text) for rel, text in files.items()}
    for owned in owned_dirs:
        directory = root / owned
        if not directory.is_dir():
            continue
        for path in directory.rglob("*.yaml"):
            rel = path.relative_to(root).as_posix()
            if rel not in changes:
                changes[rel] = Change(path, f"{display_base}/{rel}", _read(path), None)
    return [changes[rel] for rel in sorted(changes)]


def write(changes: list[Change]) -> None:
    """Apply changes; identical files are never touched (their mtime stays), writes are atomic."""
    for change in changes:
        if change.status == "identical":
            continue
        if change.new is None:
            change.path.unlink()
            continue
        change.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(change.path, change.new)


def atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

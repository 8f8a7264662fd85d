"""Load layer: YAML files → JSON data (see rolegen.offline.yamlio), with
every syntax problem reported by file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rolegen.errors import Problem, RolegenError
from rolegen.offline import yamlio

GENERATED_DIR = "generated"


@dataclass(frozen=True)
class Document:
    """One loaded YAML file: `display` is the name used in messages (relative when possible)."""

    path: Path
    display: str
    data: Any


def display_name(path: Path, base: Path | None = None) -> str:
    base = base or Path.cwd()
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def parse_yaml(text: str, display: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; a syntax error becomes a Problem with line and column (1-based)."""
    try:
        return yamlio.load(text), []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        return None, [Problem(display, "$", f"YAML syntax error{where}: {what}")]
    except yaml.YAMLError as exc:
        return None, [Problem(display, "$", f"YAML syntax error: {exc}")]


def load_document(path: Path, base: Path | None = None) -> tuple[Document | None, list[Problem]]:
    display = display_name(path, base)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(display, "$", f"cannot read file: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return None, [Problem(display, "$", "file is not UTF-8 text")]
    data, problems = parse_yaml(text, display)
    if problems:
        return None, problems
    return Document(path, display, data), []


def spec_paths(env_dir: Path) -> list[Path]:
    """Every environment spec: environments/*.yaml (generated/ lives below and is not a spec)."""
    if not env_dir.is_dir():
        raise RolegenError(
            f"no environments directory at {env_dir.as_posix()}",
            hint="run rolegen from the repository root, or pass --dir DIR",
        )
    return sorted(p for p in env_dir.glob("*.yaml") if p.is_file())


def generated_paths(env_dir: Path) -> list[Path]:
    root = env_dir / GENERATED_DIR
    return sorted(p for p in root.rglob("*.yaml") if p.is_file()) if root.is_dir() else []

"""Load layer: YAML files → plain data (string keys), with every syntax problem reported by file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rolegen.errors import Problem, RolegenError

GENERATED_DIR = "generated"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last) and stringifies keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
    loader.flatten_mapping(node)
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = str(loader.construct_object(key_node, deep=True))
        if key in result:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


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
        return yaml.load(text, Loader=_StrictLoader), []
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

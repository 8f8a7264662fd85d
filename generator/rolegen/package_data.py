"""The package's data files: where the schemas and the chart live (inside the wheel, or at the repository root
when run from source), and the two read from them at run time (a schema, the chart's default values)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE.parent.parent


def _data_dir(name: str) -> Path:
    # A wheel carries copies under rolegen/_data; a source checkout or editable install uses the repo's own.
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _REPO_ROOT / name


def schemas_dir() -> Path:
    return _data_dir("schemas")


def chart_dir() -> Path:
    return _data_dir("chart")


def schema_path(name: str) -> Path:
    """`schemas/<name>.schema.json`, but the values schema is the chart's own: Helm only validates values against
    a `values.schema.json` inside the chart, so that is the one copy."""
    return chart_dir() / "values.schema.json" if name == "values" else schemas_dir() / f"{name}.schema.json"


def shipped_schemas() -> list[Path]:
    """Every schema rolegen ships: those under schemas/ and the chart's values schema."""
    return [*sorted(schemas_dir().glob("*.schema.json")), schema_path("values")]


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load the schema `name` (see `schema_path`)."""
    data: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return data


@cache
def chart_defaults() -> dict[str, Any]:
    """The chart's own `values.yaml`: what a release gets for every value it does not set."""
    import yaml

    data: dict[str, Any] = yaml.safe_load((chart_dir() / "values.yaml").read_text(encoding="utf-8"))
    return data

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


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load `schemas/<name>.schema.json`."""
    data: dict[str, Any] = json.loads((schemas_dir() / f"{name}.schema.json").read_text(encoding="utf-8"))
    return data


@cache
def chart_defaults() -> dict[str, Any]:
    """The chart's own `values.yaml`: what a release gets for every value it does not set."""
    import yaml

    data: dict[str, Any] = yaml.safe_load((chart_dir() / "values.yaml").read_text(encoding="utf-8"))
    return data

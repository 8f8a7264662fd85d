"""Small helpers shared by tests: spec loading/editing without going through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent


def spec_data(env: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "environments" / f"{env}.yaml").read_text())
    return data


def write_spec(env_dir: Path, data: dict[str, Any]) -> Path:
    path = env_dir / f"{data['environment']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path

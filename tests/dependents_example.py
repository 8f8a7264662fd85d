"""The README's Applications example (dependents and hooks), as the tests use it: read from the README itself, so
the documented example is the tested one, and added to a copy of the bundled specs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from tests.helpers import REPO, spec_data, write_spec


def example() -> dict[str, Any]:
    """The first YAML block of the README's "Applications" section: `dependents:` and `hooks:`."""
    section = (REPO / "README.md").read_text().split("\n## Applications", 1)[1].split("\n## ", 1)[0]
    data: dict[str, Any] = yaml.safe_load(re.findall(r"```yaml\n(.*?)\n```", section, re.S)[0])
    return data


def with_example(env: str, **changes: Any) -> dict[str, Any]:
    """The bundled spec of `env` with the README's example, then `changes` on top (top-level keys)."""
    return {**spec_data(env), **example(), **changes}


def add_example(env_dir: Path) -> dict[str, dict[str, Any]]:
    """Write both bundled specs with the example into `env_dir` (a copy of environments/); returns them."""
    specs = {env: with_example(env) for env in ("gold", "golddr")}
    for data in specs.values():
        write_spec(env_dir, data)
    return specs

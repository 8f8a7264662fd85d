"""Golden files: the committed generated output is exactly what rolegen renders from the committed specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolegen.commands.render import RenderOptions, run
from rolegen.commands.validate import run as validate

REPO = Path(__file__).resolve().parent.parent


def test_committed_output_matches_a_fresh_render() -> None:
    result = run(REPO / "environments", RenderOptions(all_envs=True, check=True))
    assert [c.display for c in result.changes] == [
        "environments/generated/gold/patches/patroni-config.yaml",
        "environments/generated/gold/values.yaml",
        "environments/generated/golddr/patches/patroni-config.yaml",
        "environments/generated/golddr/values.yaml",
    ]
    assert {c.status for c in result.changes} == {"identical"}


@pytest.mark.parametrize("env", ["gold", "golddr"])
def test_rendering_twice_is_byte_identical(env: str) -> None:
    first = run(REPO / "environments", RenderOptions(envs=[env], stdout=True))
    second = run(REPO / "environments", RenderOptions(envs=[env], stdout=True))
    assert first.text == second.text
    assert first.text.endswith("\n")


def test_committed_tree_validates() -> None:
    result = validate(REPO / "environments", [])
    assert len(result.files) == 6
    assert result.problems == []

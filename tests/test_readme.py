"""The README's quick start is what CI runs: a newcomer's two commands must stay true."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_commands() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert "rolegen render --all" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci/run").read_text().splitlines()
    assert _quick_start_commands()[1] in ci


def test_the_development_map_names_only_files_that_exist_and_every_top_level_module() -> None:
    section = (REPO / "README.md").read_text().split("## Development", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(rolegen/[\w/]+\.py)`", section))
    package = REPO / "generator"
    assert sorted(p for p in named if not (package / p).is_file()) == []
    # Modules of rolegen/ itself named by their bare file name in the map (`output.py`) count as named too.
    bare = set(re.findall(r"`([\w]+\.py)`", section))
    top = {p.name for p in (package / "rolegen").glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert sorted(top - bare - {p.rpartition("/")[2] for p in named}) == []

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
    named = set(re.findall(r"`(rolegen(?:_lab)?/[\w/]+\.py)`", section))
    package = REPO / "generator"
    assert sorted(p for p in named if not (package / p).is_file()) == []
    # Modules of rolegen/ itself named by their bare file name in the map (`output.py`) count as named too.
    bare = set(re.findall(r"`([\w]+\.py)`", section))
    top = {p.name for p in (package / "rolegen").glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert sorted(top - bare - {p.rpartition("/")[2] for p in named}) == []
    # A bare file name must name a module that exists somewhere in the two packages.
    modules = {p.name for root in ("rolegen", "rolegen_lab") for p in (package / root).rglob("*.py")}
    assert sorted(bare - modules) == []
    # The lab's wing: its top-level modules by path (`rolegen_lab/lab.py`).
    lab_top = {f"rolegen_lab/{p.name}" for p in (package / "rolegen_lab").glob("*.py") if p.name != "__init__.py"}
    assert sorted(lab_top - named) == []
    # Every sub-package of either package (a folder with an __init__.py) by its path: `rolegen/cluster/`.
    subpackages = {
        f"{init.parent.relative_to(package).as_posix()}/"
        for root in ("rolegen", "rolegen_lab")
        for init in (package / root).rglob("__init__.py")
        if init.parent != package / root
    }
    assert {"rolegen/cluster/", "rolegen_lab/drills/chaos/"} <= subpackages  # the walk does find them
    assert sorted(s for s in subpackages if f"`{s}`" not in section) == []


# [text](docs/x.md#anchor), [text](../README.md#anchor), [text](#anchor): relative links between README and docs/.
LINK = re.compile(r"\]\(((?!https?:)[^)\s]*)\)")


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped but `-` and `_`, spaces to `-`."""
    headings, code = [], False
    for line in text.splitlines():
        code = code != line.startswith("```")
        if not code and line.startswith("#"):
            headings.append(line.lstrip("#").strip())
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_links_between_the_readme_and_docs_resolve() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert len(pages) > 1
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.is_file() or (anchor and anchor not in _anchors(linked.read_text())):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []

"""A command imports only what it uses: start-up time is what a pre-commit hook pays on every commit.

Timings live in bench/startup.py; these tests pin the cause (which heavy libraries a command loads), which does
not depend on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("jsonschema", "jinja2", "deepdiff", "yaml", "pydantic", "rolegen.cluster.kubectl", "rolegen.cluster.helm",
         "rolegen.procedures")

_PROBE = """
import json, sys
from rolegen.cli import main
sys.argv = ["rolegen", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""


def loaded_by(args: list[str], cwd: Path) -> set[str]:
    """The HEAVY modules a real `rolegen ARGS` process imported; asserts it exited 0."""
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=cwd, capture_output=True, text=True)
    report = json.loads(done.stderr.rsplit("PROBE ", 1)[1])
    assert report["code"] in (0, None), done.stdout + done.stderr
    return {h for h in HEAVY if any(m == h or m.startswith(f"{h}.") for m in report["modules"])}


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["render", "--help"]])
def test_version_and_help_import_no_heavy_library(args: list[str], workdir: Path) -> None:
    assert loaded_by(args, workdir) == set()


# No command loads pydantic: Typer 0.27+ would, for every option of every run (see the typer pin in pyproject.toml).
def test_validate_imports_no_templating_diffing_or_cluster_code(workdir: Path) -> None:
    assert loaded_by(["validate"], workdir) == {"jsonschema", "yaml"}


def test_render_check_imports_no_diffing_or_cluster_code(workdir: Path) -> None:
    assert loaded_by(["render", "--all", "--check"], workdir) == {"jsonschema", "jinja2", "yaml"}

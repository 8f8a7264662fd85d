"""Issue 14 acceptance: a fresh venv, only the README's lab commands (`pip install '.[lab]'`, `rolegen lab build`,
`rolegen lab up`), and the lab comes up: the extras carry everything `rolegen lab` needs (the build reuses the
binaries' cache outside the venv)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]


def _readme_lab_commands() -> list[str]:
    section = (REPO / "README.md").read_text().split("## The lab: rehearse on a laptop", 1)[1]
    block = re.search(r"```sh\n(.+?)\n```", section, re.S)
    assert block is not None
    commands = (line.split("#", 1)[0].strip() for line in block.group(1).splitlines())
    return [command for command in commands if command]  # a comment continued on its own line is no command


def test_fresh_venv_with_the_readme_commands_runs_lab_up(tmp_path: Path) -> None:
    install, build, up = _readme_lab_commands()[:3]
    assert (install, build, up) == ("pip install '.[lab]'", "rolegen lab build", "rolegen lab up")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    subprocess.run(["bash", "-c", install + " -q"], cwd=REPO, env=env, check=True, timeout=900)
    assert shutil.which("rolegen", path=env["PATH"]) == str(venv / "bin" / "rolegen")
    subprocess.run(["bash", "-c", build], cwd=REPO, env=env, check=True, timeout=3600)
    root = Path("/var/tmp" if os.geteuid() == 0 else "/tmp") / f"rolegen-wheel-lab-{os.getpid()}"
    try:
        proc = subprocess.run(["bash", "-c", f"{up} --root {root}"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "export KUBECONFIG=" in proc.stdout
        status = subprocess.run(["rolegen", "lab", "status", "--root", str(root)], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
        assert status.returncode == 0, status.stderr
        assert " leader (running" in status.stdout and " standby-leader (" in status.stdout
    finally:
        down = subprocess.run(["rolegen", "lab", "down", "--root", str(root)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not root.exists()

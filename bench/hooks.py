"""Benchmark: a clean pre-commit run of rolegen's hooks on the bundled environments, after install.

Target (issue 8): <= 2 s. Prints the median of N runs and its ratio to the target.
Run: python bench/hooks.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 2.0
GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hooks, project, home = root / "hooks", root / "project", root / "home"
        for rel in filter(None, git(REPO, "ls-files", "-z", "-co", "--exclude-standard").split("\0")):
            if (REPO / rel).is_file():
                (hooks / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, hooks / rel)
        git(hooks, "init", "-q"), git(hooks, "add", "-A"), git(hooks, "commit", "-qm", "snapshot")
        shutil.copytree(REPO / "environments", project / "environments")
        config = {"repos": [{"repo": str(hooks), "rev": git(hooks, "rev-parse", "HEAD").strip(),
                             "hooks": [{"id": "rolegen-validate"}, {"id": "rolegen-check"}]}]}
        (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
        git(project, "init", "-q"), git(project, "add", "-A"), git(project, "commit", "-qm", "envs")
        env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(home)}
        cmd = [sys.executable, "-m", "pre_commit", "run", "--all-files"]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=project, env=env, check=True, capture_output=True)
        install = time.perf_counter() - t0
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=project, env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print("| measure | seconds |\n|---|---|")
    print(f"| first run (installs the hook env) | {install:.2f} |")
    print(f"| clean run, median of {args.runs} | {median:.2f} |")
    print(f"| clean run, min / max | {min(times):.2f} / {max(times):.2f} |")
    print(f"median / target ({TARGET_S:.0f} s) = {median / TARGET_S:.2f}")
    return 0 if median <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())

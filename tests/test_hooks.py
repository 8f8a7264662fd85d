"""The pre-commit hooks, run by real pre-commit against a snapshot of this repository, as a team would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This repository's tracked and new files (not ignored ones) committed into a throwaway repo."""
    dest = tmp_path_factory.mktemp("hook-repo")
    files = _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", "snapshot")
    return dest, _git(dest, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")  # hook envs installed once per module


@pytest.fixture
def project(tmp_path: Path, hook_repo: tuple[Path, str]) -> Iterator[Path]:
    repo, rev = hook_repo
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    config = {
        "repos": [
            {
                "repo": str(repo),
                "rev": rev,
                "hooks": [{"id": "rolegen-validate"}, {"id": "rolegen-check"}, {"id": "rolegen-check-schemas"}],
            }
        ]
    }
    (tmp_path / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "environments")
    yield tmp_path


def _pre_commit(project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_hooks_pass_fail_and_pass_again_after_render(project: Path, pre_commit_home: Path) -> None:
    clean = _pre_commit(project, pre_commit_home)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.count("Passed") == 2  # no schema files in a consumer repo: that hook is skipped

    spec = project / "environments/gold.yaml"
    original = spec.read_text()
    spec.write_text(original.replace("port: 5432", "port: 70000"))
    bad = _pre_commit(project, pre_commit_home)
    assert bad.returncode == 1
    assert "environments/gold.yaml::$.peer.port: 70000 is greater than the maximum of 65535" in bad.stdout

    # A valid edit without re-render: the generated files are stale.
    for env in ("gold", "golddr"):
        path = project / f"environments/{env}.yaml"
        text = original if env == "gold" else path.read_text()
        path.write_text(text.replace("port: 5432", "port: 53700"))
    stale = _pre_commit(project, pre_commit_home)
    assert stale.returncode == 1
    assert "generated file(s) stale" in stale.stdout
    assert "+++ b/environments/generated/golddr/patches/patroni-config.yaml" in stale.stdout

    render = subprocess.run(
        [sys.executable, "-m", "rolegen", "render", "--all"], cwd=project, capture_output=True, text=True
    )
    assert render.returncode == 0, render.stderr
    again = _pre_commit(project, pre_commit_home)
    assert again.returncode == 0, again.stdout + again.stderr


def test_manifest_and_own_config_are_valid_for_pre_commit() -> None:
    for verb, name in (("validate-manifest", ".pre-commit-hooks.yaml"), ("validate-config", ".pre-commit-config.yaml")):
        result = subprocess.run(
            [sys.executable, "-m", "pre_commit", verb, name], cwd=REPO, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["rolegen-validate"]["files"].startswith("^environments/")
    assert hooks["rolegen-check"]["pass_filenames"] is False

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the bundled environments (specs + committed output) in a temporary cwd."""
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    monkeypatch.chdir(tmp_path)
    return tmp_path

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import lanes

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


@pytest.hookimpl(wrapper=True)  # around every other hook, so each sees the lane order
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    lanes.assign(config, items)
    yield


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    return lanes.make_scheduler(config, log)

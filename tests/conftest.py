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


@pytest.fixture(autouse=True)
def _versions_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kubectl version cache (rolegen.cluster.kubectl_client) of in-process clusters without a cache dir goes
    to a test's own directory, never the user's ~/.kube/cache."""
    from rolegen.cluster import kubectl_client

    own = tmp_path_factory.mktemp("kube-cache")
    monkeypatch.setattr(kubectl_client, "_cache_file",
                        lambda cache_dir: (cache_dir or own) / "rolegen-versions.json")


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

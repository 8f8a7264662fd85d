"""Helm and the `config` annotation: server-side apply conflicts (as seen on kube-apiserver) and what rolegen does."""

from __future__ import annotations

from typing import Any

import pytest

from rolegen.cluster import helm
from rolegen.cluster.helm import only_config_conflict
from rolegen.cluster.kubectl import Cluster
from rolegen.errors import RolegenError

# Verbatim from Helm 4 (helm-python-sdk 0.2.2) against kube-apiserver v1.34.4 in the lab.
SEEN = (
    'conflict occurred while applying object f088b1-prod/patroni-config /v1, Kind=ConfigMap: Apply failed with '
    '1 conflict: conflict with "kubectl-patch" using v1: .metadata.annotations.config'
)


def test_a_conflict_on_the_config_annotation_alone_is_yielded() -> None:
    assert only_config_conflict(SEEN, "patroni-config")
    assert only_config_conflict(SEEN.replace('"kubectl-patch"', '"Patroni"'), "patroni-config")


@pytest.mark.parametrize(
    "message",
    [
        SEEN.replace("patroni-config /v1", "patroni-static-config /v1"),  # another object
        SEEN.replace("Kind=ConfigMap", "Kind=Secret"),
        SEEN.replace("1 conflict: conflict", "2 conflicts: conflicts").replace(
            ".metadata.annotations.config", "\n- .metadata.annotations.config\n- .data.extra"
        ),  # another field as well
        "unable to build kubernetes objects from release manifest",  # not a conflict at all
    ],
)
def test_anything_else_is_not(message: str) -> None:
    assert not only_config_conflict(message, "patroni-config")


class FakeSdk:
    """helm_python as Releases.upgrade_install uses it: `upgrades` lists what each upgrade call does."""

    class HelmError(Exception):
        pass

    class HelmNotFoundError(HelmError):
        pass

    def __init__(self, *outcomes: str | None) -> None:
        self.outcomes = list(outcomes)  # an error message, or None for a deployed revision
        self.upgrades: list[dict[str, Any]] = []
        self.charts: list[str] = []
        self.revision = 3

    def Config(self, **_: Any) -> Any:  # the SDK's class, built by a call
        return _FakeConfig(self)


class _FakeConfig:
    def __init__(self, sdk: FakeSdk) -> None:
        self.sdk = sdk

    def __enter__(self) -> _FakeConfig:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def status(self, name: str) -> dict[str, Any]:
        return {"revision": self.sdk.revision, "status": "deployed"}

    def get_values(self, name: str) -> dict[str, Any]:
        return {}

    def upgrade(self, chart: str, name: str, values: dict[str, Any], **options: Any) -> None:
        self.sdk.upgrades.append(options)
        self.sdk.charts.append(chart)
        outcome = self.sdk.outcomes.pop(0)
        if outcome is not None:
            raise FakeSdk.HelmError(outcome)
        self.sdk.revision += 1


def test_a_race_on_the_config_annotation_retries_the_upgrade_once_never_forcing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """N6: the chart applies the live annotation; a write between its lookup and the apply is a conflict. The
    upgrade is tried again (a fresh lookup), never with --force-conflicts (which would overwrite that write)."""
    sdk = FakeSdk(SEEN, None)
    monkeypatch.setattr(helm, "_sdk", lambda: sdk)
    release = helm.Releases(Cluster("ns", "gold")).upgrade_install("patroni", {}, config_map="patroni-config")
    assert release.revision == 4
    assert sdk.upgrades == [{"reset_values": True}, {"reset_values": True}]

    sdk = FakeSdk(SEEN, SEEN)
    monkeypatch.setattr(helm, "_sdk", lambda: sdk)
    with pytest.raises(RolegenError, match="helm upgrade patroni failed on context gold: conflict occurred"):
        helm.Releases(Cluster("ns", "gold")).upgrade_install("patroni", {}, config_map="patroni-config")
    assert len(sdk.upgrades) == 2  # given up, nothing forced


def test_a_dependents_chart_is_upgraded_at_its_version_from_its_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dependent (README "Applications") names its own chart; the database's upgrade passes neither option."""
    sdk = FakeSdk(None, None)
    monkeypatch.setattr(helm, "_sdk", lambda: sdk)
    releases = helm.Releases(Cluster("ns", "gold"))
    releases.upgrade_install("identity", {"replicaCount": 0}, chart="identity", version="3.2.1",
                             repository="https://charts.example.org")
    releases.upgrade_install("patroni", {})
    assert sdk.upgrades == [{"reset_values": True, "chart_version": "3.2.1",
                             "chart_repo_url": "https://charts.example.org"}, {"reset_values": True}]
    assert sdk.charts[0] == "identity" and sdk.charts[1].endswith("chart")

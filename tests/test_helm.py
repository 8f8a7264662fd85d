"""When rolegen lets Helm take the `config` annotation back (server-side apply conflicts, seen on kube-apiserver)."""

from __future__ import annotations

import pytest

from rolegen.helm import only_config_conflict

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

"""What kubectl's (or oc's) stderr means: each failure becomes the error a user can act on, with its hint."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rolegen.cluster import kubectl
from rolegen.cluster.kubectl import RERUN_HINT, AlreadyExists, ClusterError, ClusterUnreachable, Conflict, Forbidden


@pytest.fixture
def answer(tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """A fake kubectl (--kube-client) that prints the given stderr and exits 1."""

    def set_stderr(stderr: str) -> None:
        fake = tmp_path / "kubectl"
        (tmp_path / "stderr").write_text(stderr + "\n")
        fake.write_text(f"#!/bin/sh\ncat '{tmp_path / 'stderr'}' >&2\nexit 1\n")
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
        kubectl.use_client(str(fake))

    yield set_stderr
    kubectl.use_client(None)


CASES = [
    ("Unable to connect to the server: dial tcp 10.0.0.1:6443: connect: connection refused", ClusterUnreachable,
     "cannot reach the cluster of context gold: Unable to connect to the server: dial tcp 10.0.0.1:6443: connect: "
     "connection refused",
     "check the kubeconfig context (--context/--kubeconfig) and that the API server is reachable"),
    ("dial tcp: lookup api.gold.example on 127.0.0.53:53: no such host", ClusterUnreachable,
     "cannot reach the cluster of context gold: dial tcp: lookup api.gold.example on 127.0.0.53:53: no such host",
     "check the kubeconfig context (--context/--kubeconfig) and that the API server is reachable"),
    ('error: context "gold" does not exist', ClusterUnreachable, "kubeconfig has no context gold",
     "set kubernetes.context in the spec or pass --context"),
    ('Error from server (AlreadyExists): configmaps "patroni-rolegen" already exists', AlreadyExists,
     "create -f - on context gold: already exists", None),
    ('Error from server (Forbidden): configmaps "patroni-config" is forbidden: User "bo" cannot patch resource '
     '"configmaps" in API group "" in the namespace "f088b1-prod"', Forbidden,
     'kubectl patch configmap patroni-config on context gold is forbidden: Error from server (Forbidden): configmaps '
     '"patroni-config" is forbidden: User "bo" cannot patch resource "configmaps" in API group "" in the namespace '
     '"f088b1-prod"',
     "your kubeconfig user lacks this permission in the namespace (kubectl auth can-i)"),
    ('Error from server (Conflict): Operation cannot be fulfilled on configmaps "patroni-config": the object has '
     "been modified; please apply your changes to the latest version and try again", Conflict,
     "patch configmap patroni-config on context gold: changed by someone else since it was read",
     "re-run to see the new state; nothing was overwritten"),
    ("error: the server doesn't have a resource type \"transportserverclaims\"", ClusterError,
     "kubectl patch configmap patroni-config failed on context gold: error: the server doesn't have a resource "
     'type "transportserverclaims"', RERUN_HINT),
]


@pytest.mark.parametrize(("stderr", "kind", "message", "hint"), CASES, ids=[c[1].__name__ for c in CASES])
def test_stderr_becomes_the_error_to_act_on(answer: Callable[[str], None], stderr: str, kind: type, message: str,
                                            hint: str | None) -> None:
    answer(stderr)
    cluster = kubectl.Cluster("f088b1-prod", "gold")
    with pytest.raises(ClusterError) as caught:
        if kind is AlreadyExists:
            cluster.create({"kind": "ConfigMap"})
        else:
            cluster.merge_patch("configmap", "patroni-config", {"data": {}})
    assert type(caught.value) is kind
    assert (caught.value.message, caught.value.hint) == (message, hint)


def test_get_of_a_missing_object_is_none_not_an_error(answer: Callable[[str], None]) -> None:
    answer('Error from server (NotFound): configmaps "patroni-leader" not found')
    assert kubectl.Cluster("f088b1-prod", "gold").get("configmap", "patroni-leader") is None


def test_a_context_missing_from_the_kubeconfig_is_an_error_even_for_a_get(answer: Callable[[str], None]) -> None:
    """kubectl without any kubeconfig says "not found" about the context: never an object that does not exist."""
    answer("Error in configuration: context was not found for specified context: witness")
    with pytest.raises(ClusterUnreachable, match=r"^kubeconfig has no context witness$"):
        kubectl.Cluster("rolegen-witness", "witness").get("lease", "patroni-pair")


def test_a_cluster_without_a_context_is_named_as_the_current_one(answer: Callable[[str], None]) -> None:
    answer("Unable to connect to the server: i/o timeout")
    with pytest.raises(ClusterUnreachable, match=r"^cannot reach the cluster of context \(current context\)"):
        kubectl.Cluster("f088b1-prod").list("pods")


def test_an_api_error_that_is_not_classified_still_names_the_next_command() -> None:
    """The flaky-api drill: a 503 from the API server reached the user as a raw kubectl line without a hint."""
    from rolegen.cluster.kubectl import Cluster

    error = Cluster("ns", "gold")._error("Error from server (ServiceUnavailable): the server is currently unable",
                                         ("get", "configmap", "x"))
    assert type(error).__name__ == "ClusterError" and error.hint is not None and "rolegen status" in error.hint


def test_a_brief_cluster_gives_up_on_a_silent_api_after_its_request_timeout_and_a_second(tmp_path: Path) -> None:
    """A route that drops packets: kubectl retries discovery five times over (here: a client that never ends).
    A brief client (the standby guard's failover, for the old site; Events) calls that unreachable after its
    request timeout and a second, not after the caller's 60 s."""
    fake = tmp_path / "kubectl"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    kubectl.use_client(str(fake))
    try:
        brief = kubectl.Cluster("f088b1-prod", "gold").brief(1.2)
        assert (brief.request_timeout, brief.call_timeout) == (2, 3.0)
        with pytest.raises(ClusterUnreachable, match="timed out talking to context gold"):
            brief.get("configmap", "patroni-config")
    finally:
        kubectl.use_client(None)

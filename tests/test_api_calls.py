"""Cluster calls through a run's API proxy: the requests they make and the errors each answer means, the same
classes a kubectl run's stderr gives (a user's run stops, retries or reports the same way either way)."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from rolegen.cluster import api_calls
from rolegen.cluster.api_session import Answer
from rolegen.cluster.client_errors import AlreadyExists, ClusterError, ClusterUnreachable, Conflict, Forbidden


def status(code: int, reason: str, message: str) -> Answer:
    """An error answer as the API server writes it: a `Status` object."""
    return Answer(code, json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                                    "message": message, "code": code}).encode())


class Recorded:
    """The proxy's side of one call: the request it got, the answer it gives (or the error it raises)."""

    def __init__(self, answer: Answer | Exception) -> None:
        self.answer, self.requests = answer, []  # type: ignore[var-annotated]

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float,
                content_type: str = "application/json") -> Answer:
        self.requests.append((method, path, body, content_type, timeout))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_kinds_rolegen_reads_and_writes_have_requests_and_others_run_kubectl() -> None:
    assert api_calls.supported("configmaps,pods")
    assert api_calls.supported("lease") and api_calls.supported("statefulsets") and api_calls.supported("pvc")
    assert not api_calls.supported("configmaps,secrets")  # one kind without a request: the whole call runs kubectl
    assert not api_calls.supported("role")


@pytest.mark.parametrize(("answer", "error", "says"), [
    (status(409, "Conflict", "the object has been modified"), Conflict, "changed by someone else"),
    (status(409, "AlreadyExists", 'configmaps "x" already exists'), AlreadyExists, "already exists"),
    (status(403, "Forbidden", "cannot patch configmaps"), Forbidden, "forbidden"),
    # kubectl proxy's own answer when the route to the API server refuses: "unable to connect", as kubectl says
    (Answer(500, b"dial tcp 127.0.0.1:6443: connect: connection refused\n"), ClusterUnreachable, "cannot reach"),
    # the API server's own 500 and a 503 (the lab's flaky route) are errors, never "unreachable" nor success
    (status(500, "InternalError", "dial tcp to etcd: connection refused"), ClusterError, "500"),
    (status(503, "ServiceUnavailable", "the lab's API proxy failed this request"), ClusterError, "503"),
])
def test_an_error_answer_is_the_error_a_kubectl_run_would_raise(answer: Answer, error: type[ClusterError],
                                                                  says: str) -> None:
    with pytest.raises(ClusterError) as raised:
        api_calls.get(Recorded(answer), "gold", "ns", "configmap", "x", 5)  # type: ignore[arg-type]
    assert type(raised.value) is error
    assert says in raised.value.message and "context gold" in raised.value.message


def test_a_missing_object_reads_as_none_and_a_delete_of_one_is_not_an_error() -> None:
    missing = status(404, "NotFound", 'configmaps "x" not found')
    assert api_calls.get(Recorded(missing), "gold", "ns", "configmap", "x", 5) is None  # type: ignore[arg-type]
    api_calls.delete(Recorded(missing), "gold", "ns", "pod", "p-0", 5)  # type: ignore[arg-type]
    with pytest.raises(ClusterError, match="404"):  # a patch of a missing object is an error
        api_calls.merge_patch(Recorded(missing), "gold", "ns", "configmap", "x", {}, 5)  # type: ignore[arg-type]


def test_no_answer_in_time_is_unreachable_and_a_broken_socket_is_an_error() -> None:
    with pytest.raises(ClusterUnreachable, match="timed out"):
        api_calls.get(Recorded(TimeoutError()), "gold", "ns", "configmap", "x", 2)  # type: ignore[arg-type]
    with pytest.raises(ClusterError) as raised:
        api_calls.get(Recorded(ConnectionResetError("reset by peer")), "gold", "ns", "configmap", "x", 2)  # type: ignore[arg-type]
    assert type(raised.value) is ClusterError and "reset by peer" in raised.value.message


def test_an_answer_cut_off_mid_body_is_an_error_with_its_hint_not_a_traceback() -> None:
    """The lab's flaky API reset a kept connection while its answer was read (drill flaky-api: `rolegen reseed`
    ended on `http.client.IncompleteRead`)."""
    cut = http.client.IncompleteRead(b"x" * 25941)
    with pytest.raises(ClusterError) as raised:
        api_calls.list_objects(Recorded(cut), "gold", "ns", "configmaps,pods", None, 2)  # type: ignore[arg-type]
    assert type(raised.value) is ClusterError and raised.value.hint
    assert "IncompleteRead" in raised.value.message or "bytes read" in raised.value.message


def test_a_guarded_patch_is_a_merge_patch_carrying_the_resource_version_and_returns_the_new_one() -> None:
    proxy = Recorded(Answer(200, json.dumps({"metadata": {"resourceVersion": "42"}}).encode()))
    body = {"metadata": {"annotations": {"config": "{}"}, "resourceVersion": "41"}}
    assert api_calls.merge_patch(proxy, "gold", "f088b1-prod", "configmap", "patroni-config", body, 7) == "42"  # type: ignore[arg-type]
    [(method, path, sent, content_type, timeout)] = proxy.requests
    assert (method, path, sent, content_type, timeout) == (
        "PATCH", "/api/v1/namespaces/f088b1-prod/configmaps/patroni-config", body, "application/merge-patch+json", 7)


def test_a_list_of_two_kinds_is_two_requests_by_selector_each_item_with_its_kind() -> None:
    proxy = Recorded(Answer(200, json.dumps({"items": [{"metadata": {"name": "a"}}]}).encode()))
    items = api_calls.list_objects(proxy, "gold", "ns", "configmaps,pods", "application=patroni,cluster-name=patroni",  # type: ignore[arg-type]
                                   5)
    assert [i["kind"] for i in items] == ["ConfigMap", "Pod"]
    assert [r[1] for r in proxy.requests] == [
        "/api/v1/namespaces/ns/configmaps?labelSelector=application%3Dpatroni%2Ccluster-name%3Dpatroni",
        "/api/v1/namespaces/ns/pods?labelSelector=application%3Dpatroni%2Ccluster-name%3Dpatroni"]


def test_a_created_object_goes_to_its_kinds_collection_in_its_namespace() -> None:
    proxy = Recorded(Answer(201, b"{}"))
    event = {"kind": "Event", "apiVersion": "v1", "metadata": {"name": "e", "namespace": "other"}}
    api_calls.create(proxy, "gold", "ns", event, 3)  # type: ignore[arg-type]
    lease = {"kind": "Lease", "metadata": {"name": "w"}}
    api_calls.create(proxy, "gold", "ns", lease, 3)  # type: ignore[arg-type]
    assert [r[:2] for r in proxy.requests] == [("POST", "/api/v1/namespaces/other/events"),
                                               ("POST", "/apis/coordination.k8s.io/v1/namespaces/ns/leases")]


class Sequence(Recorded):
    """Answers in turn: the first request meets a broken kept connection, the next a new one."""

    def __init__(self, *answers: Answer) -> None:
        super().__init__(answers[0])
        self.answers = list(answers)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float,
                content_type: str = "application/json") -> Answer:
        self.answer = self.answers.pop(0)
        return super().request(method, path, body, timeout=timeout, content_type=content_type)


def test_a_read_on_a_broken_kept_connection_is_asked_once_more_and_meets_the_route() -> None:
    broken = Answer(500, b"write tcp 127.0.0.1:43482->127.0.0.1:41005: write: broken pipe\n")
    refused = Answer(500, b"dial tcp 127.0.0.1:41005: connect: connection refused\n")
    proxy = Sequence(broken, refused)
    with pytest.raises(ClusterUnreachable):  # as a kubectl run would say of a cut route
        api_calls.get(proxy, "gold", "ns", "configmap", "x", 5)  # type: ignore[arg-type]
    assert len(proxy.requests) == 2
    write = Sequence(broken, refused)
    with pytest.raises(ClusterError) as raised:  # a write is never sent twice
        api_calls.merge_patch(write, "gold", "ns", "configmap", "x", {}, 5)  # type: ignore[arg-type]
    assert type(raised.value) is ClusterError and len(write.requests) == 1

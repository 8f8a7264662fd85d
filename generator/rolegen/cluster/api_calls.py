"""Cluster calls as API requests through a run's proxy (rolegen.cluster.api_session): the requests kubectl makes
for `get`, `list`, `patch --type merge`, `create` and `delete`, and the errors their answers mean, the same
classes as a kubectl run's (rolegen.cluster.kubectl). Kinds not listed here run kubectl."""

from __future__ import annotations

import http.client
import urllib.parse
from typing import Any

from rolegen.cluster.api_session import Answer, ApiSession
from rolegen.cluster.client_errors import (
    RERUN_HINT,
    AlreadyExists,
    ClusterError,
    ClusterUnreachable,
    Conflict,
    Forbidden,
)

# kubectl's names for the kinds rolegen reads and writes -> (API group path, resource, Kind).
_CORE, _APPS, _COORDINATION = "/api/v1", "/apis/apps/v1", "/apis/coordination.k8s.io/v1"
RESOURCES: dict[str, tuple[str, str, str]] = {}
for _names, _where in (
    (("configmap", "configmaps", "cm"), (_CORE, "configmaps", "ConfigMap")),
    (("pod", "pods", "po"), (_CORE, "pods", "Pod")),
    (("event", "events", "ev"), (_CORE, "events", "Event")),
    (("service", "services", "svc"), (_CORE, "services", "Service")),
    (("persistentvolumeclaim", "persistentvolumeclaims", "pvc"), (_CORE, "persistentvolumeclaims",
                                                                 "PersistentVolumeClaim")),
    (("lease", "leases"), (_COORDINATION, "leases", "Lease")),
    (("statefulset", "statefulsets", "sts"), (_APPS, "statefulsets", "StatefulSet")),
    (("deployment", "deployments", "deploy"), (_APPS, "deployments", "Deployment")),
):
    for _name in _names:
        RESOURCES[_name] = _where
# What the proxy itself answers (a 500 with its own text, no Status) when it cannot reach the API server: the
# texts of kubectl's own "unable to connect" errors.
_UNREACHABLE = ("connection refused", "no such host", "i/o timeout", "network is unreachable", "no route to host",
                "dial tcp")


_BROKEN = ("broken pipe", "connection reset", "eof", "use of closed network connection")


def _broken(answer: Answer) -> bool:
    """The proxy's own 5xx for a connection that broke under a request (no Status from the API server)."""
    return (answer.status >= 500 and not answer.status_object().get("reason")
            and any(s in answer.text().lower() for s in _BROKEN))


def supported(kinds: str) -> bool:
    """Every kind of `kinds` (kubectl's comma-separated form) has a request here."""
    return all(k.strip().lower() in RESOURCES for k in kinds.split(","))


def _path(namespace: str, kind: str, name: str | None = None, query: dict[str, str] | None = None) -> str:
    group, resource, _ = RESOURCES[kind.strip().lower()]
    path = f"{group}/namespaces/{urllib.parse.quote(namespace)}/{resource}"
    if name is not None:
        path += f"/{urllib.parse.quote(name)}"
    return path + (f"?{urllib.parse.urlencode(query)}" if query else "")


def _error(answer: Answer, site: str, what: str) -> ClusterError:
    """The error an answer means, classed as kubectl's stderr would be (rolegen.cluster.kubectl: Cluster._error)."""
    status = answer.status_object()
    reason, text = str(status.get("reason") or ""), answer.text()
    if answer.status >= 500 and not reason and any(s in text.lower() for s in _UNREACHABLE):
        return ClusterUnreachable(f"cannot reach the cluster of context {site}: {text}",
                                  hint="check the kubeconfig context (--context/--kubeconfig) and that the API server "
                                  "is reachable")
    if answer.status == 409 and reason == "AlreadyExists":
        return AlreadyExists(f"{what} on context {site}: already exists")
    if answer.status == 409:
        return Conflict(f"{what} on context {site}: changed by someone else since it was read",
                        hint="re-run to see the new state; nothing was overwritten")
    if answer.status == 403:
        return Forbidden(f"{what} on context {site} is forbidden: {text}",
                         hint="your kubeconfig user lacks this permission in the namespace (kubectl auth can-i)")
    # A 5xx, a refused write: not a timeout, never "go ahead". Whoever called stops here.
    return ClusterError(f"{what} failed on context {site}: {answer.status} {text}", hint=RERUN_HINT)


def call(session: ApiSession, site: str, method: str, path: str, body: dict[str, Any] | None, timeout: float,
         what: str, *, content_type: str = "application/json", missing_ok: bool = False) -> Any:
    """One request: its JSON answer (None for a 404 when `missing_ok`); a timeout is ClusterUnreachable, as a
    kubectl run's is."""
    try:
        answer = session.request(method, path, body, timeout=timeout, content_type=content_type)
        if method == "GET" and _broken(answer):
            # The proxy's kept connection broke (a route that changed): a read is asked once more on a new one,
            # which meets the route as a kubectl run would (refused: unreachable). Never a write.
            answer = session.request(method, path, body, timeout=timeout, content_type=content_type)
    except TimeoutError:
        raise ClusterUnreachable(f"the API proxy timed out talking to context {site}",
                                 hint="check the VPN/tunnel and the context") from None
    except (OSError, http.client.HTTPException) as exc:
        # A connection reset mid-answer (IncompleteRead) too: an error, never "go ahead", never a traceback.
        detail = str(exc) or type(exc).__name__
        raise ClusterError(f"{what} failed on context {site}: {detail}", hint=RERUN_HINT) from None
    if answer.status == 404 and missing_ok:
        return None
    if answer.status >= 300:
        raise _error(answer, site, what)
    return answer.json() if answer.body else None


def get(session: ApiSession, site: str, namespace: str, kind: str, name: str, timeout: float) -> Any:
    return call(session, site, "GET", _path(namespace, kind, name), None, timeout, f"get {kind} {name}",
                missing_ok=True)


def list_objects(session: ApiSession, site: str, namespace: str, kinds: str, selector: str | None,
                 timeout: float) -> list[dict[str, Any]]:
    """Each kind's list, in kubectl's order, each item with its `kind` (a list's items carry none)."""
    items: list[dict[str, Any]] = []
    for kind in kinds.split(","):
        query = {"labelSelector": selector} if selector else None
        answer = call(session, site, "GET", _path(namespace, kind, None, query), None, timeout, f"get {kind}")
        kind_name = RESOURCES[kind.strip().lower()][2]
        items += [{**item, "kind": kind_name} for item in (answer or {}).get("items", [])]
    return items


def merge_patch(session: ApiSession, site: str, namespace: str, kind: str, name: str, body: dict[str, Any],
                timeout: float) -> str | None:
    answer = call(session, site, "PATCH", _path(namespace, kind, name), body, timeout, f"patch {kind} {name}",
                  content_type="application/merge-patch+json")
    version = ((answer or {}).get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


def create(session: ApiSession, site: str, namespace: str, obj: dict[str, Any], timeout: float) -> None:
    kind = str(obj.get("kind", "")).lower()
    where = str((obj.get("metadata") or {}).get("namespace") or namespace)
    call(session, site, "POST", _path(where, kind), obj, timeout, f"create {kind}")


def delete(session: ApiSession, site: str, namespace: str, kind: str, name: str, timeout: float) -> None:
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    call(session, site, "DELETE", _path(namespace, kind, name), options, timeout, f"delete {kind} {name}",
         missing_ok=True)

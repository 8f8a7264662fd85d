"""The resource types the emulator serves, and the discovery / OpenAPI documents derived from them.

Discovery is the legacy (non-aggregated) form: client-go asks for aggregated discovery first and falls
back to `/api`, `/apis` and `/apis/<group>/<version>` when the answer is plain `application/json`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

SERVER_VERSION: JSON = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.1",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
TSC_GROUP = "porter.devops.gov.bc.ca"


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    status: bool = False  # has a status subresource
    scale: bool = False  # has an autoscaling/v1 Scale subresource
    custom: bool = False  # behaves like a CRD (no strategic merge patch)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


def _r(group: str, version: str, plural: str, kind: str, **kw: Any) -> Resource:
    return Resource(group, version, plural, kind, **kw)


RESOURCES: tuple[Resource, ...] = (
    _r("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), status=True),
    _r("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _r("", "v1", "secrets", "Secret"),
    _r("", "v1", "pods", "Pod", short_names=("po",), status=True),
    _r("", "v1", "services", "Service", short_names=("svc",), status=True),
    _r("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",), status=True),
    _r("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _r("", "v1", "events", "Event", short_names=("ev",)),
    _r("apps", "v1", "statefulsets", "StatefulSet", short_names=("sts",), status=True, scale=True),
    _r("apps", "v1", "deployments", "Deployment", short_names=("deploy",), status=True, scale=True),
    _r("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), status=True, scale=True),
    _r("apps", "v1", "daemonsets", "DaemonSet", short_names=("ds",), status=True),
    _r("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", short_names=("hpa",),
       status=True),
    _r("batch", "v1", "jobs", "Job", status=True),
    _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",), status=True),
    _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    _r("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",), status=True),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _r(TSC_GROUP, "v1alpha1", "transportserverclaims", "TransportServerClaim", short_names=("tsc",),
       status=True, custom=True),
)

_BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def group_versions() -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


def api_versions() -> JSON:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}


def api_group_list() -> JSON:
    groups = []
    for group, version in group_versions():
        if not group:
            continue
        gv = {"groupVersion": f"{group}/{version}", "version": version}
        groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> JSON | None:
    for g in api_group_list()["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resource_list(group: str, version: str) -> JSON | None:
    members = [r for r in RESOURCES if r.group == group and r.version == version]
    if not members:
        return None
    entries: list[JSON] = []
    for r in members:
        entry: JSON = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                       "kind": r.kind, "verbs": _VERBS, "storageVersionHash": _hash(r.plural)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        entries.append(entry)
        if r.status:
            entries.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
        if r.scale:
            entries.append({"name": f"{r.plural}/scale", "singularName": "", "namespaced": r.namespaced,
                            "group": "autoscaling", "version": "v1", "kind": "Scale",
                            "verbs": ["get", "patch", "update"]})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root() -> JSON:
    """The `/openapi/v3` index. Its per-group documents exist only so kubectl learns that the server
    validates fields itself (`fieldValidation`), which makes it skip client-side schema validation."""
    return {"paths": {_gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}?hash={_hash(g + v)}"}
                      for g, v in group_versions()}}


def openapi_v3_document(group: str, version: str) -> JSON | None:
    members = [r for r in RESOURCES if r.group == group and r.version == version]
    if not members:
        return None
    param = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    paths: JSON = {}
    for r in members:
        prefix = f"/{_gv_path(group, version)}" + ("/namespaces/{namespace}" if r.namespaced else "")
        gvk = {"group": group, "version": version, "kind": r.kind}
        paths[f"{prefix}/{r.plural}/{{name}}"] = {
            # No requestBody: kubectl apply then builds its strategic patch from compiled-in types.
            "patch": {"operationId": f"patch{r.kind}", "parameters": [param],
                      "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
        }
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (rolegen emulator)", "version": "v1.37.1"},
            "paths": paths, "components": {"schemas": {}}}

"""Object semantics behind the HTTP routes: create/read/list/replace/patch/delete, subresources, dryRun.

Rules followed from the real apiserver, because Patroni, kubectl or Helm depend on them:
* a stale `metadata.resourceVersion` in a PUT body or in a patched result is a 409 Conflict;
* for types with a status subresource, writes to the main resource keep the stored `status`, and
  writes to `/status` change only `status` (the status given at create is kept: no controllers);
* `/scale` reads and writes `spec.replicas` through an autoscaling/v1 Scale;
* deleting a Namespace deletes every namespaced object in it at once (no Terminating phase);
* namespaced objects can only be created in an existing namespace.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import yaml

from . import patching, protobuf
from .resources import RESOURCES, Resource, lookup
from .selectors import SelectorError, label_string, selects
from .store import Obj, Store, StoreError

_ns = lookup("", "v1", "namespaces")
assert _ns is not None
NAMESPACES: Resource = _ns


@dataclass(frozen=True)
class Route:
    res: Resource
    namespace: str  # "" for cluster-scoped objects and all-namespace lists
    name: str = ""
    sub: str = ""  # "", "status" or "scale"


def status_body(reason: str, code: int, message: str, name: str = "", kind: str = "") -> Obj:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                 "status": "Success" if code < 400 else "Failure", "message": message, "reason": reason,
                 "code": code}
    if name or kind:
        body["details"] = {"name": name, "kind": kind}
    return body


def parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "protobuf" in content_type:
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as e:
            raise StoreError("UnsupportedMediaType", 415, str(e)) from None
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise StoreError("BadRequest", 400, f"cannot decode the request body: {e}") from None


class Api:
    def __init__(self, store: Store) -> None:
        self.store = store
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            if not store.exists(NAMESPACES, "", ns):  # a restarted server keeps its store, as etcd would
                self.create(Route(NAMESPACES, ""), {"metadata": {"name": ns}}, {})

    # -- helpers -------------------------------------------------------------------------------
    def _check_namespace(self, route: Route) -> None:
        if route.res.namespaced and not self.store.exists(NAMESPACES, "", route.namespace):
            raise StoreError("NotFound", 404, f'namespaces "{route.namespace}" not found')

    @staticmethod
    def _dry(query: dict[str, str]) -> bool:
        return query.get("dryRun", "") == "All"

    @staticmethod
    def _scale_of(obj: Obj) -> Obj:
        meta = obj["metadata"]
        match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                  "creationTimestamp") if k in meta},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": label_string(match)}}

    def _write(self, route: Route, current: Obj, new: Obj, query: dict[str, str]) -> Obj:
        """Store `new` as the next version of `current`, honouring the subresource rules."""
        if route.sub == "scale":
            replicas = (new.get("spec") or {}).get("replicas")
            merged = copy.deepcopy(current)
            merged.setdefault("spec", {})["replicas"] = replicas
            merged["metadata"]["resourceVersion"] = (new.get("metadata") or {}).get(
                "resourceVersion") or current["metadata"]["resourceVersion"]
            return self._scale_of(self.store.update(route.res, route.namespace, route.name, merged,
                                                    self._dry(query)))
        if route.sub == "status":
            merged = copy.deepcopy(current)
            merged.pop("status", None)
            if new.get("status") is not None:
                merged["status"] = new["status"]
            merged["metadata"]["resourceVersion"] = (new.get("metadata") or {}).get(
                "resourceVersion") or current["metadata"]["resourceVersion"]
            new = merged
        elif route.res.status:
            new = {**new, "status": current.get("status")}
            if new["status"] is None:
                del new["status"]
        new.get("metadata", {}).pop("managedFields", None)
        return self.store.update(route.res, route.namespace, route.name, new, self._dry(query))

    # -- verbs ---------------------------------------------------------------------------------
    def read(self, route: Route) -> Obj:
        obj = self.store.get(route.res, route.namespace, route.name)
        return self._scale_of(obj) if route.sub == "scale" else obj

    def list(self, route: Route, query: dict[str, str]) -> Obj:
        try:
            pred = selects(query.get("labelSelector"), query.get("fieldSelector"))
        except SelectorError as e:
            raise StoreError("BadRequest", 400, str(e)) from None
        items, rv = self.store.list(route.res, route.namespace or None)
        return {"kind": f"{route.res.kind}List", "apiVersion": route.res.api_version,
                "metadata": {"resourceVersion": str(rv)}, "items": [o for o in items if pred(o)]}

    def create(self, route: Route, body: Any, query: dict[str, str]) -> Obj:
        if not isinstance(body, dict):
            raise StoreError("BadRequest", 400, "the request body must be an object")
        meta = body.setdefault("metadata", {})
        if route.res.namespaced:
            if meta.get("namespace") not in (None, "", route.namespace):
                raise StoreError("BadRequest", 400, "the namespace of the provided object does not match "
                                 "the namespace sent on the request")
            self._check_namespace(route)
        if route.res is NAMESPACES:
            body.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            body["status"] = {"phase": "Active"}
        meta.pop("managedFields", None)
        return self.store.create(route.res, route.namespace, body, self._dry(query))

    def replace(self, route: Route, body: Any, query: dict[str, str]) -> Obj:
        if not isinstance(body, dict):
            raise StoreError("BadRequest", 400, "the request body must be an object")
        with self.store.cond:
            current = self.store.get(route.res, route.namespace, route.name)
            return self._write(route, current, body, query)

    def patch(self, route: Route, body: Any, content_type: str, query: dict[str, str]) -> Obj:
        # Read-modify-write under the store's (reentrant) lock: a patch that names no resourceVersion
        # must never fail with a conflict because another client wrote in between.
        with self.store.cond:
            return self._patch(route, body, content_type, query)

    def _patch(self, route: Route, body: Any, content_type: str, query: dict[str, str]) -> Obj:
        kind = content_type.split(";")[0].strip()
        try:
            current: Obj | None = self.store.get(route.res, route.namespace, route.name)
        except StoreError:
            if kind != "application/apply-patch+yaml" or route.sub:
                raise
            current = None
        base = self._scale_of(current) if current is not None and route.sub == "scale" else current
        try:
            if kind == "application/json-patch+json":
                new = patching.json_patch(base, body)
            elif kind == "application/merge-patch+json":
                new = patching.merge_patch(base, body)
            elif kind == "application/strategic-merge-patch+json":
                if route.res.custom:
                    raise patching.PatchError("strategic merge patch is not supported for custom "
                                              "resources; use a merge or JSON patch", 415)
                new = patching.strategic_merge(base, body)
            elif kind == "application/apply-patch+yaml":
                if not isinstance(body, dict):
                    raise patching.PatchError("an applied configuration must be an object", 400)
                new = patching.server_side_apply(base, body)
            else:
                raise patching.PatchError(f"unsupported patch type {kind!r}", 415)
        except patching.PatchError as e:
            raise StoreError("UnsupportedMediaType" if e.code == 415 else "Invalid", e.code, str(e)) from None
        if not isinstance(new, dict):
            raise StoreError("BadRequest", 400, "the patched object is not an object")
        if current is None:  # server-side apply creates
            new.setdefault("metadata", {})["name"] = route.name
            return self.create(route, new, query)
        return self._write(route, current, new, query)

    def delete(self, route: Route, options: Any, query: dict[str, str]) -> Obj:
        options = options if isinstance(options, dict) else {}
        pre = options.get("preconditions") or {}
        dry = self._dry(query) or "All" in (options.get("dryRun") or [])
        with self.store.cond:
            if route.res is NAMESPACES and not dry:
                self.store.get(route.res, "", route.name)
                self.store.delete_namespace_contents(route.name, RESOURCES)
            return self.store.delete(route.res, route.namespace, route.name, pre.get("resourceVersion"),
                                     pre.get("uid"), dry)

    def delete_collection(self, route: Route, options: Any, query: dict[str, str]) -> Obj:
        listed = self.list(route, query)
        for obj in listed["items"]:
            meta = obj["metadata"]
            try:
                self.delete(Route(route.res, meta.get("namespace", ""), meta["name"]), options, query)
            except StoreError as e:
                if e.code != 404:
                    raise
        return listed

"""Objects, one global resourceVersion counter, and the watch event log.

Every write takes the one lock, bumps the counter and appends an event; watchers wait on the same
condition. The log is bounded: a watch from a resourceVersion older than the oldest kept event gets
410 Gone, as from a compacted etcd.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .resources import Resource

Obj = dict[str, Any]
ResKey = tuple[str, str]  # (group, plural)


class StoreError(Exception):
    """A failed store operation; `reason`/`code` become the Status the server answers with."""

    def __init__(self, reason: str, code: int, message: str) -> None:
        super().__init__(message)
        self.reason, self.code, self.message = reason, code, message


@dataclass(frozen=True)
class Event:
    rv: int
    key: ResKey
    namespace: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    old: Obj | None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


class Store:
    def __init__(self, max_events: int = 5000) -> None:
        self.cond = threading.Condition(threading.RLock())  # reentrant: Api holds it across read-modify-write
        self.rv = 1
        self.closed = False
        self._objects: dict[ResKey, dict[tuple[str, str], Obj]] = {}
        self._events: deque[Event] = deque(maxlen=max_events)
        self._complete_after = 1  # the log holds every event with rv > this

    # -- reads ---------------------------------------------------------------------------------
    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        with self.cond:
            obj = self._objects.get((res.group, res.plural), {}).get((namespace, name))
            if obj is None:
                raise StoreError("NotFound", 404, f'{res.plural}{"." + res.group if res.group else ""} '
                                 f'"{name}" not found')
            return copy.deepcopy(obj)

    def exists(self, res: Resource, namespace: str, name: str) -> bool:
        with self.cond:
            return (namespace, name) in self._objects.get((res.group, res.plural), {})

    def list(self, res: Resource, namespace: str | None) -> tuple[list[Obj], int]:
        with self.cond:
            items = [copy.deepcopy(o) for (ns, _), o in sorted(self._objects.get((res.group, res.plural),
                                                                                  {}).items())
                     if namespace is None or ns == namespace]
            return items, self.rv

    # -- writes --------------------------------------------------------------------------------
    def _record(self, res: Resource, namespace: str, kind: str, obj: Obj, old: Obj | None) -> None:
        if len(self._events) == self._events.maxlen:
            self._complete_after = self._events[0].rv
        self._events.append(Event(self.rv, (res.group, res.plural), namespace, kind,
                                  copy.deepcopy(obj), old))
        self.cond.notify_all()

    def create(self, res: Resource, namespace: str, obj: Obj, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name") or ""
        with self.cond:
            if not name and meta.get("generateName"):
                name = meta["generateName"] + uuid.uuid4().hex[:5]
                meta["name"] = name
            if not name:
                raise StoreError("Invalid", 422, f"{res.kind}: metadata.name: Required value")
            bucket = self._objects.setdefault((res.group, res.plural), {})
            if (namespace, name) in bucket:
                raise StoreError("AlreadyExists", 409, f'{res.plural} "{name}" already exists')
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            if res.namespaced:
                meta["namespace"] = namespace
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            if "spec" in obj or res.scale:
                meta["generation"] = 1
            meta.pop("deletionTimestamp", None)
            if dry_run:
                meta["resourceVersion"] = str(self.rv)
                return obj
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            bucket[(namespace, name)] = obj
            self._record(res, namespace, "ADDED", obj, None)
            return copy.deepcopy(obj)

    def update(self, res: Resource, namespace: str, name: str, obj: Obj, dry_run: bool = False) -> Obj:
        """Replace an object. A `metadata.resourceVersion` in `obj` must equal the stored one (409)."""
        obj = copy.deepcopy(obj)
        with self.cond:
            bucket = self._objects.get((res.group, res.plural), {})
            old = bucket.get((namespace, name))
            if old is None:
                raise StoreError("NotFound", 404, f'{res.plural} "{name}" not found')
            meta = obj.setdefault("metadata", {})
            wanted = meta.get("resourceVersion")
            if wanted not in (None, "") and str(wanted) != old["metadata"]["resourceVersion"]:
                raise StoreError("Conflict", 409, f'Operation cannot be fulfilled on {res.plural} "{name}": '
                                 "the object has been modified; please apply your changes to the latest "
                                 "version and try again")
            if meta.get("name", name) != name:
                raise StoreError("BadRequest", 400, "the name of the object does not match the URL")
            if old.get("metadata", {}).get("uid") and meta.get("uid") not in (None, old["metadata"]["uid"]):
                raise StoreError("Conflict", 409, f'Precondition failed: UID in object meta: {meta["uid"]}')
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            # Server-owned metadata survives whatever the client sent.
            for field in ("uid", "creationTimestamp", "generation", "namespace"):
                if field in old["metadata"]:
                    meta[field] = old["metadata"][field]
                else:
                    meta.pop(field, None)
            meta["name"] = name
            if {**obj, "metadata": {**meta, "resourceVersion": old["metadata"]["resourceVersion"]}} == old:
                return copy.deepcopy(old)  # a no-op write does not bump resourceVersion (like the apiserver)
            if "generation" in meta and _spec_of(obj) != _spec_of(old):
                meta["generation"] = int(meta["generation"]) + 1
            elif "generation" not in meta and "spec" in obj:
                meta["generation"] = 1
            if dry_run:
                meta["resourceVersion"] = old["metadata"]["resourceVersion"]
                return obj
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            bucket[(namespace, name)] = obj
            self._record(res, namespace, "MODIFIED", obj, old)
            return copy.deepcopy(obj)

    def delete(self, res: Resource, namespace: str, name: str, precondition_rv: str | None = None,
               precondition_uid: str | None = None, dry_run: bool = False) -> Obj:
        with self.cond:
            bucket = self._objects.get((res.group, res.plural), {})
            old = bucket.get((namespace, name))
            if old is None:
                raise StoreError("NotFound", 404, f'{res.plural} "{name}" not found')
            if (precondition_rv and precondition_rv != old["metadata"]["resourceVersion"]) or (
                    precondition_uid and precondition_uid != old["metadata"]["uid"]):
                raise StoreError("Conflict", 409, f'Operation cannot be fulfilled on {res.plural} "{name}": '
                                 "Precondition failed")
            if dry_run:
                return copy.deepcopy(old)
            del bucket[(namespace, name)]
            self.rv += 1
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self._record(res, namespace, "DELETED", gone, old)
            return copy.deepcopy(gone)

    def delete_namespace_contents(self, namespace: str, resources: tuple[Resource, ...]) -> None:
        for res in resources:
            if res.namespaced:
                for obj in self.list(res, namespace)[0]:
                    with contextlib.suppress(StoreError):  # deleted concurrently
                        self.delete(res, namespace, obj["metadata"]["name"])

    # -- watch ---------------------------------------------------------------------------------
    def events_after(self, rv: int, key: ResKey, namespace: str | None) -> tuple[builtins.list[Event], int]:
        """Events newer than `rv` and the resourceVersion they are complete up to; raises 410 Gone
        when the log no longer reaches back that far."""
        with self.cond:
            if rv < self._complete_after:
                raise StoreError("Expired", 410, f"too old resource version: {rv} ({self._complete_after})")
            return [e for e in self._events if e.rv > rv and e.key == key
                    and (namespace is None or e.namespace == namespace)], self.rv

    def wait(self, rv: int, timeout: float) -> None:
        """Block until something newer than `rv` happened, the store closed, or `timeout` passed."""
        with self.cond:
            if self.rv <= rv and not self.closed:
                self.cond.wait(timeout)

    def compact(self) -> None:
        """Forget the event log (tests use this to provoke 410 Gone)."""
        with self.cond:
            self._events.clear()
            self._complete_after = self.rv

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

"""An emulated Kubernetes API server that real Patroni, kubectl and Helm accept (test/lab use only).

Design decision: a small purpose-built server on the standard library (`http.server` with one thread
per connection), not a subclass of kmock 0.8's `KubernetesEmulator`. kmock lacks most of what these
clients depend on (resourceVersion/uid stamping, selectors, 409 on stale writes, PUT and collection
DELETE, watch resourceVersion/timeout/bookmark semantics, `watch=True`, namespaces, OpenAPI, protobuf
bodies); adding them meant overriding most of its request handling, so its asyncio machinery bought
little. Plain threads also make the emulator trivial to run inside pytest, next to blocking clients,
with no event loop and no third-party dependency (PyYAML, already a rolegen dependency, is used to
read apply-patch bodies and write kubeconfigs).

Modules: `resources` (served types, discovery, OpenAPI), `store` (objects, resourceVersion, event
log), `selectors`, `patching` (merge / JSON / strategic / apply), `protobuf` (request bodies),
`api` (verbs and subresources), `server` (HTTP routing and watch streams), `control` (`Emulator`).

OpenAPI: only a minimal `/openapi/v3` is served. It declares, per group-version, that PATCH accepts
`fieldValidation`, which makes kubectl (1.37) validate on the server instead of downloading schemas, so
`--validate=false` is not needed. It carries no schemas: `kubectl explain` and OpenAPI v2 do not work,
and kubectl's client-side apply builds strategic patches from its compiled-in types instead.

What is not emulated: controllers and kubelets (no Pods are started, no status is filled in, no
rollout ever completes, Helm `wait="watcher"` never finishes), exec/logs/port-forward, admission and
defaulting, RBAC/authentication (everything is allowed), Table output (kubectl falls back to its own
NAME/AGE columns), pagination (`limit` is ignored: one page), field ownership and managedFields in
server-side apply, Namespace `Terminating` phase and finalizers (deletion is immediate).
"""

from __future__ import annotations

from .control import Emulator, kubeconfig_dict
from .errors import EmulatorError

__all__ = ["Emulator", "EmulatorError", "kubeconfig_dict"]

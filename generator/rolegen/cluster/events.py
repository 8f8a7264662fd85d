"""Kubernetes Events for role changes, on the `<scope>-config` ConfigMap of each site, so `kubectl get events`
(or `oc get events`) tells what a switchover, failover, failback or re-seed did without rolegen.

Core v1 Events (`apiVersion: v1`, `kind: Event`), not events.k8s.io/v1: every supported API server (and
OpenShift) accepts a core v1 Event through a plain `kubectl create -f`, with only the legacy validation (no
`eventTime`/`action`/`reportingController` triple to get exactly right); `kubectl get events` lists both kinds.

Best effort, never in the way: each site's Events are written in order by a thread of their own, each write
with a short request timeout (Cluster.create_event); a site whose write fails gets one `warning:` line and no
further Events in this run (a site that does not answer would otherwise cost the timeout per step); `close`
waits a bounded time for what is queued. A failed Event never fails, nor waits for, the role change.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from rolegen.cluster.kubectl import Cluster
from rolegen.offline.spec import Spec

COMPONENT = "rolegen"
WRITE_SECONDS = 5.0  # one Event write at most
CLOSE_SECONDS = 5.0  # what a run waits at its end for Events still queued
EventType = Literal["Normal", "Warning"]


def event_body(spec: Spec, reason: str, message: str, kind: EventType, at: datetime, host: str,
               serial: int = 0) -> dict[str, Any]:
    """A core v1 Event about `spec`'s `<scope>-config` ConfigMap. Its name follows the API server's own
    (`<object>.<hex nanoseconds>`), `serial` keeping two Events of the same nanosecond apart."""
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nanos = int(at.timestamp() * 1_000_000) * 1000 + serial
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{spec.config_map}.{nanos:x}", "namespace": spec.namespace,
                     "labels": {"app.kubernetes.io/managed-by": COMPONENT}},
        "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": spec.config_map,
                           "namespace": spec.namespace},
        "reason": reason,
        "message": message[:1024],
        "type": kind,
        "source": {"component": COMPONENT, "host": host},
        "reportingComponent": COMPONENT,
        "reportingInstance": host,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


@dataclass
class _Site:
    """One site's queue of Events and the thread that writes them."""

    environment: str
    cluster: Cluster
    warn: Callable[[str], None]
    pending: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    failed: bool = False
    sticky: bool = True  # a failed write ends the site's Events (a run); False: each Event tries (a long process)
    thread: threading.Thread | None = None

    def send(self, body: dict[str, Any]) -> None:
        if self.failed:
            return
        self.pending.put(body)
        if self.thread is None:
            self.thread = threading.Thread(target=self._drain, name=f"events-{self.environment}", daemon=True)
            self.thread.start()

    def _drain(self) -> None:
        while True:
            body = self.pending.get()
            try:
                if not self.failed:
                    self.cluster.create_event(body, WRITE_SECONDS)
            except Exception as exc:  # best effort: nothing may reach the role change
                self.failed = self.sticky
                text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                if self.sticky:
                    self.warn(f"warning: Kubernetes Events not written on {self.environment} ({text}); "
                              "the role change goes on (its history is written apart)")
                else:
                    self.warn(f"warning: a Kubernetes Event not written on {self.environment} ({text}); "
                              "the next one is tried")
            finally:
                self.pending.task_done()

    def left(self) -> int:
        return self.pending.unfinished_tasks


class EventLog:
    """Events on every site of a pair, in the order they were emitted, each site on its own."""

    def __init__(self, sites: list[tuple[Spec, Cluster]], host: str, log: Callable[[str], None], *,
                 sticky: bool = True) -> None:
        self.specs = [spec for spec, _ in sites]
        self.host = host
        self._sites = {spec.environment: _Site(spec.environment, cluster, log, sticky=sticky)
                       for spec, cluster in sites}
        self._serial = 0
        self.emitted: list[tuple[str, str, str]] = []  # (type, reason, message), in order

    def emit(self, reason: str, message: str, kind: EventType = "Normal") -> None:
        now = datetime.now(UTC)
        self._serial += 1
        self.emitted.append((kind, reason, message))
        for spec in self.specs:
            self._sites[spec.environment].send(event_body(spec, reason, message, kind, now, self.host, self._serial))

    def close(self, seconds: float | None = None) -> int:
        """Wait up to `seconds` (CLOSE_SECONDS) for the queued Events; returns how many were still unwritten."""
        deadline = time.monotonic() + (CLOSE_SECONDS if seconds is None else seconds)
        for site in self._sites.values():
            while site.left() and not site.failed and time.monotonic() < deadline:
                time.sleep(0.02)
        return sum(site.left() for site in self._sites.values() if not site.failed)

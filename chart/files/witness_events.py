"""The leader guard's decisions as Kubernetes Events (chart/files/witness-guard.py): one Event per decision that
matters to people reading `kubectl get events` on this site (a stall, a resume, a fence, a refused promotion,
synchronous commit dropped or restored), on the site's `<scope>-config` ConfigMap as the standby guard's are.
Best effort and in the background: the API server may be the very thing that failed, and a decision never waits
for its Event. Needs only python3 (stdlib) and the startup guard's API access (its module, beside this file)."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# decision -> (reason, type)
REASONS = {
    "stall": ("WitnessGuardStalled", "Warning"),
    "resume": ("WitnessGuardResumed", "Normal"),
    "fence": ("WitnessGuardFenced", "Warning"),
    "refuse-promotion": ("WitnessPromotionRefused", "Warning"),
    "sync-drop": ("SynchronousCommitDropped", "Warning"),
    "sync-restore": ("SynchronousCommitRestored", "Normal"),
}


def event_body(namespace: str, scope: str, reason: str, kind: str, message: str, host: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config_map = f"{scope}-config"
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{config_map}.", "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": config_map, "namespace": namespace},
        "reason": reason, "message": message[:1024], "type": kind,
        "source": {"component": "rolegen-witness-guard", "host": host},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }


class Events:
    """`emit(decision, message)`: an Event when the decision is one of REASONS. `api` returns the startup
    guard's (base URL, headers, TLS context); a failure is one log line, and the next Event is tried anyway."""

    def __init__(self, namespace: str, scope: str, api: Callable[[], tuple[str, dict[str, str], Any]],
                 log: Callable[[str], None]) -> None:
        self.namespace, self.scope, self.api, self.log = namespace, scope, api, log
        self.host = socket.gethostname()

    def emit(self, decision: str, message: str) -> threading.Thread | None:
        if decision not in REASONS:
            return None
        reason, kind = REASONS[decision]
        body = event_body(self.namespace, self.scope, reason, kind, message, self.host)
        thread = threading.Thread(target=self._post, args=(body,), daemon=True)
        thread.start()
        return thread

    def _post(self, body: dict[str, Any]) -> None:
        try:
            base, headers, tls = self.api()
            req = urllib.request.Request(f"{base}/api/v1/namespaces/{self.namespace}/events", method="POST",
                                         data=json.dumps(body).encode(), headers={**headers,
                                                                                 "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5, context=tls):
                pass
        except Exception as exc:  # an Event never stops the guard, whatever failed
            self.log(f"event {body['reason']} not written ({exc})")

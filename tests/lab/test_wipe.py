"""The wipe paths' cluster-side facts on a real API server: who owns a StatefulSet's replica count after the
`kubectl scale` a re-seed (and failback's rewind) does, and whether Helm's next upgrade may change it."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from conftest import lab_cluster as cluster
from conftest import lab_pair as pair
from rolegen.cluster.kubectl import Cluster, kubectl_binary
from rolegen.procedures.wipe import replicas
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab


def run(c: Cluster, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [kubectl_binary(), "--kubeconfig", str(c.kubeconfig), "--context", str(c.context), "--cache-dir",
           str(c.cache_dir), "-n", c.namespace, *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)


def replica_owners(c: Cluster) -> list[tuple[Any, Any]]:
    """(manager, operation) of every managedFields entry that owns spec.replicas."""
    live = json.loads(run(c, "get", "statefulset", "patroni", "-o", "json", "--show-managed-fields").stdout)
    return [(e.get("manager"), e.get("operation")) for e in live["metadata"]["managedFields"]
            if "f:replicas" in ((e.get("fieldsV1") or {}).get("f:spec") or {})]


def test_helm_may_change_the_replica_count_after_rolegen_scaled_the_statefulset(lab: Lab) -> None:
    """Measured on kube-apiserver v1.34 with kubectl 1.37: `kubectl scale` (the scale subresource) removes
    spec.replicas from Helm's apply set and records no other owner, so Helm's next server-side apply takes it
    back without a conflict, even with another count. rolegen therefore scales with plain `kubectl scale` and
    restores the spec's declared count (what Helm renders)."""
    site, c = pair(lab, "golddr"), cluster(lab, "golddr")
    count = replicas(site)
    # The embedded Helm SDK's field manager owns it after an install, nobody after an earlier module's scale.
    assert replica_owners(c) in ([("python", "Apply")], [])
    c.scale("statefulset", "patroni", 0)
    c.scale("statefulset", "patroni", count)
    assert replica_owners(c) == []
    live = c.get("statefulset", "patroni")
    assert live is not None
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "patroni", "namespace": c.namespace}, "spec": {**live["spec"], "replicas": count + 1}}
    # Helm's upgrade without doing it: a server-side apply (dry run) under its field manager, another count.
    applied = run(c, "apply", "--server-side", "--dry-run=server", "--field-manager=python", "-f", "-",
                  stdin=json.dumps(body))
    assert applied.returncode == 0, applied.stderr
    lab.wait_role("golddr", "standby-leader", 120)

"""The wipe paths' cluster-side facts on a real API server: who owns a StatefulSet's replica count after a scale."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import lab_cluster as cluster
from conftest import lab_pair as pair
from rolegen.kubectl import kubectl_binary
from rolegen.lab.lab import Lab
from rolegen.procedures.wipe import hand_replicas_back, replicas

pytestmark = pytest.mark.lab


def helm_apply_with_replicas(lab: Lab, env: str, count: int) -> subprocess.CompletedProcess[str]:
    """What Helm's next upgrade does to the StatefulSet, without doing it: a server-side apply (dry run) under the
    embedded Helm's field manager ("python") of the live spec with another replica count."""
    c = cluster(lab, env)
    live = c.get("statefulset", "patroni")
    assert live is not None
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "patroni", "namespace": c.namespace}, "spec": {**live["spec"], "replicas": count}}
    cmd = [kubectl_binary(), "--kubeconfig", str(c.kubeconfig), "--context", str(c.context), "--cache-dir",
           str(c.cache_dir), "-n", c.namespace, "apply", "--server-side", "--dry-run=server",
           "--field-manager=python", "-f", "-"]
    return subprocess.run(cmd, input=json.dumps(body), capture_output=True, text=True, timeout=60)


def test_a_scaled_statefulset_is_handed_back_to_helm(lab: Lab) -> None:
    """kubectl scale (0, then back to the declared count, as a re-seed does) takes spec.replicas from Helm: its
    next upgrade that changes the count conflicts. hand_replicas_back ends that."""
    site = pair(lab, "golddr")
    c = cluster(lab, "golddr")
    count = replicas(site)
    c.scale("statefulset", "patroni", 0)
    c.scale("statefulset", "patroni", count)
    refused = helm_apply_with_replicas(lab, "golddr", count + 1)
    assert refused.returncode != 0 and "conflict" in refused.stderr.lower() and ".spec.replicas" in refused.stderr
    hand_replicas_back(site)
    accepted = helm_apply_with_replicas(lab, "golddr", count + 1)
    assert accepted.returncode == 0, accepted.stderr
    lab.wait_role("golddr", "standby-leader", 120)

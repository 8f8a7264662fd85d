"""Real Helm (helm-python-sdk 0.2.2, Helm SDK v4) against the emulator: the release lifecycle.

Helm stores releases as Secrets sent as protobuf and applies chart objects with server-side apply,
so this exercises the protobuf decoder and the apply approximation end to end."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_http import CONTEXT, Http

from rolegen.lab.emulator import Emulator

pytestmark = pytest.mark.lab

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: tiny\nversion: 0.1.0\n",
    "values.yaml": "greeting: hello\nreplicas: 1\n",
    "templates/objects.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cfg
data:
  greeting: {{ .Values.greeting | quote }}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}-db
spec:
  replicas: {{ .Values.replicas }}
  serviceName: {{ .Release.Name }}-db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: pg, image: "postgres:18"}]
---
apiVersion: porter.devops.gov.bc.ca/v1alpha1
kind: TransportServerClaim
metadata:
  name: {{ .Release.Name }}-tsc
spec:
  service: {{ .Release.Name }}-master
  servicePort: 5432
  monitor: {interval: 10, timeout: 10, type: tcp}
""",
}


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    for name, text in CHART.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture(params=["secret", "configmap"])
def storage(request: pytest.FixtureRequest) -> str:
    driver: str = request.param
    return driver


@pytest.fixture
def helm(emulator: Emulator, kubeconfig: Path, storage: str) -> Iterator[Any]:
    config_mod = pytest.importorskip("helm_python.config")
    with config_mod.Config(kubeconfig_path=str(kubeconfig), kube_context=CONTEXT, namespace="default",
                           storage_driver=storage) as cfg:
        yield cfg


def _release(api: Http, storage: str, name: str, revision: int) -> dict[str, Any]:
    """Decode Helm's stored release: gzip JSON, base64 encoded (and base64 again as Secret data)."""
    obj = api("GET", f"/api/v1/namespaces/default/{storage}s/sh.helm.release.v1.{name}.v{revision}").body
    payload = obj["data"]["release"]
    inner = base64.b64decode(base64.b64decode(payload) if storage == "secret" else payload)
    decoded: dict[str, Any] = json.loads(gzip.decompress(inner))
    return decoded


def test_release_lifecycle(helm: Any, chart: Path, api: Http, storage: str) -> None:
    helm.install(str(chart), "demo", {"greeting": "hi"}, timeout=30)
    cfg = api("GET", "/api/v1/namespaces/default/configmaps/demo-cfg").body
    assert cfg["data"] == {"greeting": "hi"}
    assert _release(api, storage, "demo", 1)["name"] == "demo"  # the protobuf body decoded intact
    tsc = "/apis/porter.devops.gov.bc.ca/v1alpha1/namespaces/default/transportserverclaims/demo-tsc"
    assert api("GET", tsc).body["spec"]["servicePort"] == 5432

    helm.upgrade(str(chart), "demo", {"greeting": "bye", "replicas": 2}, timeout=30)
    assert helm.get_values("demo") == {"greeting": "bye", "replicas": 2}
    sts = api("GET", "/apis/apps/v1/namespaces/default/statefulsets/demo-db").body
    assert sts["spec"]["replicas"] == 2
    assert [(h["revision"], h["status"]) for h in helm.history("demo")] == [(1, "superseded"), (2, "deployed")]

    helm.rollback("demo", version=1, timeout=30)
    assert helm.get_values("demo") == {"greeting": "hi"}
    assert api("GET", "/api/v1/namespaces/default/configmaps/demo-cfg").body["data"] == {"greeting": "hi"}
    assert [h["status"] for h in helm.history("demo")][-1] == "deployed"
    assert len(helm.history("demo")) == 3

    helm.uninstall("demo", timeout=30)
    assert api("GET", "/api/v1/namespaces/default/configmaps/demo-cfg").status == 404
    assert api("GET", tsc).status == 404
    assert api("GET", f"/api/v1/namespaces/default/{storage}s?labelSelector=owner%3Dhelm").body["items"] == []
    assert helm.list() == []

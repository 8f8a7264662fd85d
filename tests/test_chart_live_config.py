"""N6/N1: after install, Helm never rewrites the DCS `config` annotation. Real Helm (the embedded SDK) renders
the chart as an upgrade does, its `lookup` answered by a minimal Kubernetes API (discovery plus one GET), so the
test sees exactly what an upgrade would apply."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests import helm_chart as chart

from rolegen.offline.render import dumps_json

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "ns-under-test"
_DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "configmaps", "singularName": "configmap", "namespaced": True, "kind": "ConfigMap",
         "verbs": ["get", "list"]}]},
}


class FakeApi:
    """Serves discovery and the ConfigMaps in `objects` (by name); everything else is 404."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                prefix = f"/api/v1/namespaces/{NAMESPACE}/configmaps/"
                name = path.removeprefix(prefix) if path.startswith(prefix) else None
                body = _DISCOVERY.get(path) or (api.objects.get(name) if name else None)
                status = 200 if body else 404
                data = json.dumps(body or {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                           "reason": "NotFound", "code": 404}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def kubeconfig(self, directory: Path) -> Path:
        server = f"http://127.0.0.1:{self.server.server_address[1]}"
        path = directory / "kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "site",
            "clusters": [{"name": "site", "cluster": {"server": server}}],
            "contexts": [{"name": "site", "context": {"cluster": "site", "user": "me", "namespace": NAMESPACE}}],
            "users": [{"name": "me", "user": {"token": "unused"}}],
        }))
        return path


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeApi]:
    fake = FakeApi()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def leader_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((REPO / "environments/generated/gold/values.yaml").read_text())
    assert values["role"] == "leader"
    return values


def annotation(manifests: list[dict[str, Any]]) -> str:
    value: str = chart.dcs_config_map(manifests)["metadata"]["annotations"]["config"]
    return value


def test_an_upgrade_carries_the_live_annotation_through_role_and_hand_set_keys_included(
    api: FakeApi, tmp_path: Path
) -> None:
    values = leader_values()
    kubeconfig = api.kubeconfig(tmp_path)
    scope = values["patroni"]["scope"]
    installed = annotation(chart.render_manifests(values, "patroni", NAMESPACE))

    # No <scope>-config yet (install, or re-created after a deletion): the role renders, as offline.
    assert annotation(chart.render_live(values, "patroni", NAMESPACE, kubeconfig)) == installed

    # Live: a standby since a switchover (the values still say leader), with keys set by hand, in Patroni's
    # own key order. The upgrade applies exactly that string: it neither promotes nor drops a key.
    live = copy.deepcopy(json.loads(installed))
    live |= {"pause": True, "failsafe_mode": True, "synchronous_mode": True,
             "standby_cluster": {"host": "peer-master", "port": 5432}}
    live.setdefault("postgresql", {}).setdefault("parameters", {})["work_mem"] = "64MB"
    live_text = json.dumps(dict(reversed(list(live.items()))), separators=(",", ":"))
    assert live_text != dumps_json(live)
    api.objects[f"{scope}-config"] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": f"{scope}-config", "namespace": NAMESPACE,
        "annotations": {"config": live_text, "initialize": "7301"}}}
    upgraded = chart.render_live(values, "patroni", NAMESPACE, kubeconfig)
    assert annotation(upgraded) == live_text
    assert "initialize" not in chart.dcs_config_map(upgraded)["metadata"]["annotations"]  # still Patroni's

    # An object without the annotation (someone removed it) gets the declared config, as on install.
    del api.objects[f"{scope}-config"]["metadata"]["annotations"]["config"]
    assert annotation(chart.render_live(values, "patroni", NAMESPACE, kubeconfig)) == installed

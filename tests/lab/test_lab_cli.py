"""`rolegen lab up|status|down` as users run them: real control planes up (the witness site's too: `--witness`),
kubectl through the printed KUBECONFIG and a site's route to the witness, a witness link cut and healed through the
daemon, and `down` leaves no process (etcd, API servers, controller managers, members) and no port."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster.kubectl import kubectl_binary
from rolegen_lab.control.client import leftover_pids
from rolegen_lab.controlplane import k8sbin
from rolegen_lab.node.runtime import member_runtime

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def test_lab_up_status_kubectl_and_down_leave_nothing() -> None:
    root = member_runtime().workdir() / "lab"
    try:
        up = runner.invoke(app, ["lab", "up", "--dir", str(REPO / "environments"), "--root", str(root),
                                 "--k8s-bin", str(k8sbin.find().directory), "--witness"])
        assert up.exit_code == 0, up.output
        kubeconfig = next(line.split("=", 1)[1] for line in up.stdout.splitlines() if line.startswith("export"))
        state = json.loads(runner.invoke(app, ["lab", "status", "--root", str(root), "-f", "json"]).stdout)
        kubectl = [kubectl_binary(), "--kubeconfig", kubeconfig, "--cache-dir", str(root / "kc")]
        version = json.loads(subprocess.run([*kubectl, "--context", "gold", "version", "-o", "json"],
                                            capture_output=True, text=True, timeout=30).stdout)
        assert version["serverVersion"]["gitVersion"] == k8sbin.K8S_VERSION
        pods = subprocess.run([*kubectl, "--context", "golddr", "get", "pods"], capture_output=True, text=True,
                              timeout=30).stdout.split()
        assert pods[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] and "patroni-0" in pods
        witness = state["witness"]
        assert "witness: context witness" in runner.invoke(app, ["lab", "status", "--root", str(root)]).stdout
        leases = [*kubectl, "--context", "witness", "get", "leases", "-o", "name"]
        assert subprocess.run(leases, capture_output=True, text=True, timeout=30).returncode == 0
        guard = [kubectl_binary(), "--kubeconfig", witness["kubeconfigs"]["gold"], "--cache-dir", str(root / "kc"),
                 "get", "leases"]
        assert subprocess.run(guard, capture_output=True, timeout=30).returncode == 0
        cut = runner.invoke(app, ["lab", "witness-cut", "gold", "--root", str(root)])
        assert cut.stdout.strip() == "gold's link to the witness cut both ways (connections refused)", cut.output
        assert "link to the witness cut" in runner.invoke(app, ["lab", "status", "--root", str(root)]).stdout
        refused = subprocess.run(guard, capture_output=True, text=True, timeout=30)
        assert refused.returncode != 0 and "refused" in refused.stderr
        assert subprocess.run(leases, capture_output=True, timeout=30).returncode == 0  # the operator's route works
        runner.invoke(app, ["lab", "witness-heal", "--root", str(root)])
        assert subprocess.run(guard, capture_output=True, timeout=30).returncode == 0
        addresses = [urlsplit(url) for url in (witness["api"], *witness["routes"].values())]
        addresses += [urlsplit(site["api"]) for site in state["sites"].values()]
        ports = [(a.hostname or "", a.port or 0) for a in addresses]
        ports += [(h, int(p)) for h, p in (site["master"].split(":") for site in state["sites"].values())]
        assert all(listening(h, p) for h, p in ports)
        assert leftover_pids(root)  # the daemon, etcd, API servers, controller managers, members
        down = runner.invoke(app, ["lab", "down", "--root", str(root)])
        assert down.exit_code == 0 and down.stdout.strip() == "lab stopped", down.output
        assert leftover_pids(root) == []
        assert not any(listening(h, p) for h, p in ports)
        assert not root.exists()
    finally:
        runner.invoke(app, ["lab", "down", "--root", str(root)])
        shutil.rmtree(root.parent, ignore_errors=True)

"""A run's API proxy (the real kubectl installed with rolegen, `kubectl proxy --unix-socket`): what a user relies
on without seeing it. It answers as kubectl does, falls back to kubectl runs when it is gone, and never outlives
the run, even one killed with SIGKILL. Against a real API server: tests/lab/test_api_session_real.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rolegen.cluster import api_session
from rolegen.cluster.kubectl import Cluster, ClusterUnreachable

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: someone
  user: {token: not-a-secret}
contexts:
- name: gold
  context: {cluster: nowhere, user: someone, namespace: ns}
current-context: gold
"""

KUBECTL_REFUSED = re.escape("The connection to the server 127.0.0.1:1 was refused")  # a kubectl run's own words


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    monkeypatch.setenv("ROLEGEN_KUBE_CLIENT", str(Path(sys.executable).parent / "kubectl"))  # what runs without
    return Cluster("ns", "gold", config, tmp_path / "cache", request_timeout=2)


def proxied(cluster: Cluster) -> api_session.Site:
    """The site's proxy as Cluster.proxy_site builds it, without its client's version probe (no server here)."""
    command = [str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "--context",
               "gold"]
    return api_session.Site(cluster._key, command, cluster.name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_calls_go_through_the_proxy_while_the_run_holds_it_and_it_is_gone_after(cluster: Cluster) -> None:
    with api_session.opened([proxied(cluster)]) as serving:
        assert serving == ["gold"]
        session = cluster.session()
        assert session is not None
        pid, directory = session._proc.pid, session.directory
        assert oct(directory.stat().st_mode & 0o777) == "0o700"  # nobody else reaches the user's credentials
        # The route to the API server refuses: the same error a kubectl run raises, from the proxy's answer.
        with pytest.raises(ClusterUnreachable, match="cannot reach the cluster of context gold: dial tcp"):
            cluster.get("configmap", "patroni-config")
    assert cluster.session() is None and not directory.exists()
    assert not _alive(pid)
    with pytest.raises(ClusterUnreachable, match=KUBECTL_REFUSED):  # a kubectl run again
        cluster.get("configmap", "patroni-config")


def test_a_proxy_that_died_during_the_run_is_replaced_by_kubectl_runs(cluster: Cluster) -> None:
    with api_session.opened([proxied(cluster)]):
        session = cluster.session()
        assert session is not None
        session._proc.kill()
        session._proc.wait()
        with pytest.raises(ClusterUnreachable, match=KUBECTL_REFUSED):  # kubectl's own message: it ran
            cluster.list("configmaps,pods", "cluster-name=patroni")
        assert cluster.session() is None


def test_a_client_that_cannot_proxy_is_logged_and_the_run_goes_on_with_kubectl_runs(cluster: Cluster,
                                                                                   tmp_path: Path) -> None:
    site = proxied(cluster)
    broken = api_session.Site(site.key, ["/bin/false"], site.name)
    said: list[str] = []
    with api_session.opened([broken], said.append) as serving:
        assert serving == [] and cluster.session() is None
    assert said == ["   gold: no API proxy (it exited with 1); each call runs the client"]


def test_a_run_killed_with_sigkill_leaves_no_proxy_behind(cluster: Cluster, tmp_path: Path) -> None:
    script = f"""
import os, sys, time
sys.path.insert(0, {str(Path(api_session.__file__).parents[2])!r})
from pathlib import Path
from rolegen.cluster import api_session
from rolegen.cluster.kubectl import Cluster
cluster = Cluster("ns", "gold", Path({str(cluster.kubeconfig)!r}), request_timeout=2)
site = api_session.Site(cluster._key, {proxied(cluster).command!r}, "gold")
with api_session.opened([site]):
    print(cluster.session()._proc.pid, flush=True)
    time.sleep(60)
"""
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    pid = int(run.stdout.readline())
    assert _alive(pid)
    run.send_signal(signal.SIGKILL)
    run.wait()
    run.stdout.close()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)

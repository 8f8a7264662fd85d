"""One lab site: a real Kubernetes control plane (controlplane.py: etcd, kube-apiserver, kube-controller-manager),
the lab's node agent and volume provisioner (nodeagent.py, provisioner.py) running the Pods the real
StatefulSet controller creates, and the proxy standing for `<release>-master` + the TSC tunnel.

Owns the site's lifecycle and its faults: `fail()` takes the whole site down (members SIGKILLed, tunnel cut,
etcd + API server + controller manager stopped), `restore_api()` brings the control plane back with its data,
`resume_members()` lets the node agent restart the Pods (as a kubelet after a node reboot).
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from rolegen.errors import RolegenError
from rolegen.lab import crds
from rolegen.lab.controlplane import ControlPlane
from rolegen.lab.k8sbin import K8sBinaries
from rolegen.lab.kubeapi import ApiError, KubeApi
from rolegen.lab.members import LabMember
from rolegen.lab.nodeagent import NodeAgent
from rolegen.lab.proxy import Address, TunnelProxy
from rolegen.lab.runtime import MemberRuntime

LEADER_POLL = 0.1


class LabSite:
    def __init__(
        self,
        env: str,
        namespace: str,
        release: str,
        context: str,
        root: Path,
        runtime: MemberRuntime,
        proxy: Address,
        binaries: K8sBinaries,
        index: int = 1,
    ) -> None:
        self.env, self.namespace, self.release, self.context = env, namespace, release, context
        self.root, self.runtime = root, runtime
        self.plane = ControlPlane(env, root / env / "control-plane", binaries)
        self.api = KubeApi(self.plane.url, namespace)
        self.agent = NodeAgent(env, index, self.api, runtime, root, self.plane.port, binaries_version(binaries))
        self.kubeconfig = root / f"kubeconfig-{env}"
        self._leader: Address | None = None
        self.proxy = TunnelProxy(proxy, lambda: self._leader)
        self._stop = threading.Event()
        self._dark = threading.Event()
        self._thread = threading.Thread(target=self._watch_leader, name=f"leader-{env}", daemon=True)

    @property
    def members(self) -> dict[int, LabMember]:
        return self.agent.members

    @property
    def errors(self) -> list[str]:
        return self.agent.errors

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start_api(self) -> str:
        self.plane.start()
        self.api.tls = self.plane.ssl_context()
        self.api.ensure_namespace()
        crds.install(self.api)
        self.kubeconfig.write_text(yaml.safe_dump(self.kubeconfig_data(), sort_keys=False))
        self.kubeconfig.chmod(0o600)
        return self.plane.url

    def kubeconfig_data(self) -> dict[str, Any]:
        return self.plane.kubeconfig(self.context, self.namespace)

    def create_secret(self, name: str, data: dict[str, str]) -> None:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        try:
            self.api.create("secrets", {"metadata": {"name": name}, "type": "Opaque", "data": encoded})
        except ApiError as exc:
            if exc.status != 409:
                raise

    def start_controller(self) -> None:
        """The node agent (Pods, volumes) and the `<release>-master` leader tracking."""
        self.agent.start()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.agent.stop()
        self.proxy.close()
        self.plane.stop()

    # -- failure injection ---------------------------------------------------------------------------------
    def fail(self) -> None:
        """The whole site goes dark: members SIGKILLed, control plane (etcd, API server, controllers) down,
        tunnel cut."""
        self._dark.set()
        self.agent.pause()
        with self.agent.lock:
            for member in self.members.values():
                member.kill()
        self._leader = None
        self.proxy.partition()
        self.plane.stop()

    def restore_api(self) -> None:
        """The site's control plane answers again, with its etcd data (members stay down until resume_members);
        the node agent reports their containers terminated, as a node coming back does before restarting them."""
        self.plane.start()
        self.api.tls = self.plane.ssl_context()
        self.agent.report_stopped()

    def resume_members(self) -> None:
        """The platform restarts the site's Pods (no rolegen involved) and the tunnel comes back."""
        self.proxy.heal()
        self._dark.clear()
        self.agent.resume()

    # -- `<release>-master` ----------------------------------------------------------------------------------
    def _watch_leader(self) -> None:
        while not self._stop.wait(LEADER_POLL):
            if not self._dark.is_set():
                self._leader = self._find_leader()

    def _find_leader(self) -> Address | None:
        """Where `<release>-master` points: the running member whose Patroni answers /leader with 200."""
        with self.agent.lock:
            members = list(self.members.values())
        for member in members:
            if member.running and member.rest("/leader")[0] == 200:
                return member.dsn_host
        return None

    # -- observation ---------------------------------------------------------------------------------------
    def wait(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        logs = "\n".join(f"--- {m.name}\n{m.log_tail(1500)}" for m in self.members.values())
        errors = "\n".join(self.errors[-5:])
        raise TimeoutError(f"lab site {self.env}: {what} not reached in {timeout:.0f}s\n{logs}\n{errors}")

    def member_states(self) -> dict[str, dict[str, Any]]:
        return {m.name: m.rest("/patroni")[1] for m in list(self.members.values()) if m.running}


def binaries_version(binaries: K8sBinaries) -> str:
    from rolegen.lab.k8sbin import version_of

    try:
        return version_of(binaries)
    except OSError as exc:
        raise RolegenError(f"cannot run {binaries.path('kube-apiserver')}: {exc}") from exc

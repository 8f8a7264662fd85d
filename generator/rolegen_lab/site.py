"""One lab site: a real Kubernetes control plane (controlplane.py: etcd, kube-apiserver, kube-controller-manager),
the lab's node agent and volume provisioner (nodeagent.py, provisioner.py) running the Pods the real
StatefulSet controller creates, and two proxies: `proxy` stands for the `<release>-master` Service (local
clients, writers) and `tunnel` for the TSC tunnel endpoint the *peer's* standby_cluster (and startup guard)
connects to, so cutting the tunnel stops replication while local writes continue. A third proxy, `api_proxy`,
is the operator's route to the API server (rolegen_lab.network.apiproxy): what the lab's kubeconfig names, so
operator-side API faults leave the site's own view of its API untouched.

Owns the site's lifecycle and its faults, which act on processes and proxies, never on API objects: members
killed (restarted by the node agent as a kubelet would, unless held down) and Patroni paused
(rolegen_lab.faults.SiteFaults), the tunnel cut; `fail()` takes the whole site down (members SIGKILLed and held,
both proxies cut, etcd + API server + controller manager stopped), `restore_api()` brings the control plane back
with its data (members still held, reported terminated), `resume_members()` releases them and heals the links
(as a kubelet after a node reboot).
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from rolegen.errors import RolegenError
from rolegen_lab.controlplane import crds
from rolegen_lab.controlplane.apiclient import ApiError, KubeApi
from rolegen_lab.controlplane.k8sbin import K8sBinaries
from rolegen_lab.controlplane.processes import ControlPlane
from rolegen_lab.faults import SiteFaults
from rolegen_lab.network.apiproxy import ApiProxy, server_context
from rolegen_lab.network.proxy import Address, TunnelProxy
from rolegen_lab.node.agent import NodeAgent
from rolegen_lab.node.members import LabMember
from rolegen_lab.node.runtime import MemberRuntime

LEADER_POLL = 0.1


class LabSite(SiteFaults):
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
        tunnel: Address | None = None,
        tunnel_source: str | None = None,
        guard_port: int | None = None,
    ) -> None:
        self.env, self.namespace, self.release, self.context = env, namespace, release, context
        self.root, self.runtime = root, runtime
        self.plane = ControlPlane(env, root / env / "control-plane", binaries)
        self.api = KubeApi(self.plane.url, namespace)
        self.agent = NodeAgent(env, index, self.api, runtime, root, self.plane.port, binaries_version(binaries))
        self.kubeconfig = root / f"kubeconfig-{env}"
        self._leader: Address | None = None
        self.proxy = TunnelProxy(proxy, lambda: self._leader)  # <release>-master: local clients
        # What the peer dials; its connections arrive from `tunnel_source` (the peer's egress, in peer.cidrs).
        self.tunnel = TunnelProxy(tunnel, lambda: self._leader, tunnel_source) if tunnel else self.proxy
        # Where this site's standby guard (`rolegen guard`) listens: its process, once started, or else its Pod
        # while Ready (the chart's Service); the peer reaches it through the tunnel (guard_link, a port of the same
        # tunnel: cut with it).
        self.guard_address: Address | None = None
        self.guard_link: TunnelProxy | None = None
        if guard_port is not None and tunnel is not None:
            self.guard_link = TunnelProxy((tunnel[0], guard_port),
                                          lambda: self.guard_address or self.agent.guards.endpoint(), tunnel_source)
            self.tunnel.companions.append(self.guard_link)
        self.members: dict[int, LabMember] = self.agent.members  # the agent's own dict (never rebound)
        self.held: set[int] = self.agent.held  # ordinals kept down (kill --no-restart): the agent skips them
        self.paused: set[int] = set()  # ordinals whose Patroni is SIGSTOPped
        self._lost_held: set[int] = set()  # what fail() held (resume_members releases those only)
        self.api_down = False
        self.api_proxy: ApiProxy | None = None  # created with the control plane (start_api)
        self.last_leader: int | None = None  # ordinal of the member that last answered /leader
        self._lock = self.agent.lock
        self._stop = threading.Event()
        self._dark = threading.Event()
        self._thread = threading.Thread(target=self._watch_leader, name=f"leader-{env}", daemon=True)

    @property
    def errors(self) -> list[str]:
        return self.agent.errors

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start_api(self) -> str:
        self.plane.start()
        self.api.tls = self.plane.ssl_context()
        if self.api_proxy is None:
            pki = self.plane.pki
            self.api_proxy = ApiProxy(("127.0.0.1", 0), ("127.0.0.1", self.plane.port),
                                      server_context(str(pki.serving_crt), str(pki.serving_key)))
        self.api.ensure_namespace()
        crds.install(self.api)
        self.kubeconfig.write_text(yaml.safe_dump(self.kubeconfig_data(), sort_keys=False))
        self.kubeconfig.chmod(0o600)
        return self.plane.url

    def kubeconfig_data(self) -> dict[str, Any]:
        """Direct to the API server: the lab's own view (Helm installs, observations)."""
        return self.plane.kubeconfig(self.context, self.namespace)

    def operator_kubeconfig_data(self) -> dict[str, Any]:
        """Through `api_proxy`: the operator's view (rolegen, drills' rolegen runs)."""
        data = self.kubeconfig_data()
        if self.api_proxy is not None:
            for cluster in data["clusters"]:
                cluster["cluster"]["server"] = self.api_proxy.url
        return data

    def create_secret(self, name: str, data: dict[str, str], kind: str = "Opaque") -> None:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        try:
            self.api.create("secrets", {"metadata": {"name": name}, "type": kind, "data": encoded})
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
        with self._lock:
            for ordinal in sorted(self.paused):
                self.members[ordinal].resume()  # a stopped Patroni ignores SIGTERM: it would orphan its postgres
            self.paused.clear()
        self.agent.stop()
        self.proxy.close()
        if self.tunnel is not self.proxy:
            self.tunnel.close()
        if self.api_proxy is not None:
            self.api_proxy.close()
        self.plane.stop()
        self.api.close()

    # -- failure injection ---------------------------------------------------------------------------------
    def fail(self, dark: bool = False) -> None:
        """The whole site goes dark: members (and the standby guard's Pod) SIGKILLed and held down, control plane
        (etcd, API server, controllers) down, `<release>-master` and tunnel cut. `dark`: the route to its API
        drops packets (connections hang) rather than refusing them."""
        self._dark.set()
        self.agent.pause()
        with self._lock:
            self._lost_held = set(self.members) - self.held
            self.held.update(self.members)
            for ordinal in sorted(self.paused):
                self.members[ordinal].resume()
            self.paused.clear()
            for member in self.members.values():
                member.kill()
            self._leader = None
        self.agent.guards.hold()  # the standby guard's Pod goes with its node
        self.proxy.partition()
        self.tunnel.partition()
        if self.api_proxy is not None:
            self.api_proxy.set_upstream(False, dark=dark)
        self.plane.stop()
        self.api_down = True

    def restore_api(self) -> None:
        """The site's control plane answers again, with its etcd data (members stay held until resume_members);
        the node agent reports their containers terminated, as a node coming back does before restarting them."""
        if self.api_down:  # restore(api_only) then restore(): the second finds it up
            self.plane.start()
            self.api.tls = self.plane.ssl_context()
            self.api_down = False
            if self.api_proxy is not None:
                self.api_proxy.set_upstream(True)
        self.agent.report_stopped()
        self.agent.resume()  # held members stay down: it reports them terminated

    def resume_members(self, tunnel: bool = True) -> None:
        """The platform restarts the site's Pods (no rolegen involved) and the links come back (the tunnel
        only with `tunnel`: else whoever cut it heals it)."""
        with self._lock:
            self.held.difference_update(self._lost_held)
            self._lost_held = set()
        self.agent.guards.release()
        self.proxy.heal()
        if tunnel:
            self.tunnel.heal()
        self._dark.clear()
        self.agent.resume()

    @property
    def lost(self) -> bool:
        """The site is dark (fail() without resume_members())."""
        return self._dark.is_set()

    # -- `<release>-master` ----------------------------------------------------------------------------------
    def _watch_leader(self) -> None:
        while not self._stop.wait(LEADER_POLL):
            if not self._dark.is_set():
                self._leader = self._find_leader()

    def _find_leader(self) -> Address | None:
        """Where `<release>-master` points: the running member whose Patroni answers /leader with 200."""
        with self._lock:
            # A paused Patroni answers nothing, as its readiness probe would not: no longer an endpoint.
            members = [(o, m) for o, m in self.members.items() if o not in self.paused]
        for ordinal, member in members:
            if member.is_leader():
                self.last_leader = ordinal
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
        with self._lock:
            members = [m for o, m in self.members.items() if m.running and o not in self.paused]
        return {m.name: m.rest("/patroni")[1] for m in members}


def binaries_version(binaries: K8sBinaries) -> str:
    from rolegen_lab.controlplane.k8sbin import version_of

    try:
        return version_of(binaries)
    except OSError as exc:
        raise RolegenError(f"cannot run {binaries.path('kube-apiserver')}: {exc}") from exc

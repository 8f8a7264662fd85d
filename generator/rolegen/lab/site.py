"""One lab site: an emulated API server, the lab acting as kubelet + StatefulSet controller for the chart's
Patroni members, and two proxies: `proxy` stands for the `<release>-master` Service (local clients, writers) and
`tunnel` for the TSC tunnel endpoint the *peer's* standby_cluster (and startup guard) connects to, so cutting the
tunnel stops replication while local writes continue.

Faults act on the lab's own process management (never on the API emulator): members killed (restarted by the
reconcile loop as a kubelet would, unless held down) and Patroni paused (rolegen.lab.faults.SiteFaults), the
tunnel cut, the whole site lost (`fail`)."""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from rolegen.errors import RolegenError
from rolegen.lab.emulator import Emulator
from rolegen.lab.faults import SiteFaults
from rolegen.lab.kubeapi import ApiError, KubeApi
from rolegen.lab.members import LabMember, free_port, resolve_env
from rolegen.lab.proxy import Address, TunnelProxy
from rolegen.lab.runtime import MemberRuntime

RECONCILE_INTERVAL = 0.3


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
        tunnel: Address | None = None,
    ) -> None:
        self.env, self.namespace, self.release, self.context = env, namespace, release, context
        self.root, self.runtime = root, runtime
        self.emulator = Emulator(port=free_port(), context=context)
        self.api: KubeApi | None = None
        self.members: dict[int, LabMember] = {}
        self._leader: Address | None = None
        self.proxy = TunnelProxy(proxy, lambda: self._leader)  # <release>-master: local clients
        self.tunnel = TunnelProxy(tunnel, lambda: self._leader) if tunnel else self.proxy  # what the peer dials
        self.held: set[int] = set()  # ordinals kept down (kill --no-restart): the reconcile loop skips them
        self.paused: set[int] = set()  # ordinals whose Patroni is SIGSTOPped
        self.api_down = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lab-{env}", daemon=True)
        self.errors: list[str] = []
        self._reported: dict[str, tuple[bool, int]] = {}

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start_api(self) -> str:
        url = self.emulator.start()
        self.api = KubeApi(url, self.namespace)
        self.api.ensure_namespace()
        self.kubeconfig = self.emulator.write_kubeconfig(self.root / f"kubeconfig-{self.env}", self.namespace)
        return url

    def create_secret(self, name: str, data: dict[str, str]) -> None:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        try:
            self._api.create("secrets", {"metadata": {"name": name}, "type": "Opaque", "data": encoded})
        except ApiError as exc:
            if exc.status != 409:
                raise

    def start_controller(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._lock:
            for ordinal in sorted(self.paused):
                self.members[ordinal].resume()  # a stopped Patroni ignores SIGTERM: it would orphan its postgres
            self.paused.clear()
            for member in self.members.values():
                member.stop()
        self.proxy.close()
        if self.tunnel is not self.proxy:
            self.tunnel.close()
        self.emulator.stop()

    # -- failure injection ---------------------------------------------------------------------------------
    def fail(self) -> None:
        """The whole site goes dark: members SIGKILLed, API server down, tunnel cut."""
        self._paused.set()
        with self._lock:
            self.paused.clear()
            for member in self.members.values():
                member.kill()
            self._leader = None
        self.proxy.partition()
        self.tunnel.partition()
        self.emulator.stop()
        self.api_down = True

    def restore_api(self) -> None:
        """The site's API server answers again (members stay down until resume_members); its kubelet reports
        the members' containers as terminated, as a node coming back does before it restarts them."""
        self.emulator.start()  # same port, same objects: as a real API server backed by etcd
        self.api_down = False
        with self._lock:
            self._report_containers()

    def resume_members(self) -> None:
        """The platform restarts the site's Pods (no rolegen involved) and the tunnel comes back."""
        self.proxy.heal()
        self.tunnel.heal()
        self._paused.clear()

    @property
    def lost(self) -> bool:
        """The site is dark (fail() without resume_members())."""
        return self._paused.is_set()

    # -- kubelet + StatefulSet controller ------------------------------------------------------------------
    @property
    def _api(self) -> KubeApi:
        if self.api is None:
            raise RolegenError(f"lab site {self.env}: API server not started")
        return self.api

    def _loop(self) -> None:
        while not self._stop.wait(RECONCILE_INTERVAL):
            if self._paused.is_set():
                continue
            try:
                self.reconcile()
            except (ApiError, OSError) as exc:
                self.errors.append(str(exc))

    def reconcile(self) -> None:
        with self._lock:
            sts = self._api.get("statefulsets", self.release)
            replicas = int(sts["spec"].get("replicas", 1)) if sts else 0
            pvcs = {p["metadata"]["name"] for p in self._api.list("persistentvolumeclaims")}
            for ordinal in sorted(self.members):
                if ordinal >= replicas and self.members[ordinal].running:
                    self.members[ordinal].stop()
                    self._api.delete("pods", self.members[ordinal].name)
            for member in self.members.values():
                if not member.running and f"data-{member.name}" not in pvcs:
                    member.wipe()  # the claim is gone, and with it the volume
            if sts is not None:
                for ordinal in range(replicas):
                    if ordinal not in self.held:
                        self._ensure_member(ordinal, sts, pvcs)
            self._leader = self._find_leader()
            self._report_containers()
        if sts is not None:
            with contextlib.suppress(ApiError):
                ready = sum(1 for m in self.members.values() if m.running)
                self._api.request(
                    "PATCH",
                    self._api.path("statefulsets", self.release) + "/status",
                    {"status": {"replicas": ready, "readyReplicas": ready, "availableReplicas": ready}},
                    "application/merge-patch+json",
                )

    def _ensure_member(self, ordinal: int, sts: dict[str, Any], pvcs: set[str]) -> None:
        name = f"{self.release}-{ordinal}"
        member = self.members.get(ordinal)
        if member is None:
            member = self.members[ordinal] = LabMember(name, self.root / self.env / name, self.runtime)
        if member.running:
            return
        if member.process is not None:  # exited on its own: the kubelet restarts it (restartPolicy Always)
            member.stop()
            member.restarts += 1
        template = sts["spec"]["template"]
        if f"data-{name}" not in pvcs:
            claim = sts["spec"]["volumeClaimTemplates"][0]
            labels = claim["metadata"].get("labels", {})
            self._api.create(
                "persistentvolumeclaims",
                {"metadata": {"name": f"data-{name}", "labels": labels}, "spec": claim["spec"]},
            )
        if self._api.get("pods", name) is None:  # Patroni patches its own Pod: it must exist first
            self._api.create(
                "pods",
                {
                    "metadata": {"name": name, "labels": template["metadata"].get("labels", {})},
                    "spec": template["spec"],
                    "status": {"phase": "Running", "podIP": "127.0.0.1"},
                },
            )
        container = next(c for c in template["spec"]["containers"] if c["name"] == "patroni")
        files = self._mounted_files(template)
        static = yaml.safe_load(files["patroni.yml"])
        env = resolve_env(container.get("env", []), name, self._secrets())
        config = member.configure(static, files, self.context)
        member.start(config, env, self.kubeconfig, container.get("command"))

    def _report_containers(self) -> None:
        """As a kubelet does: each Pod's status says whether its container runs (rolegen trusts a stopped
        container to run no postmaster), with the restart count."""
        for member in self.members.values():
            running = member.running
            if self._reported.get(member.name) == (running, member.restarts):
                continue
            state: dict[str, Any] = {"running": {}} if running else {"terminated": {"exitCode": 137, "reason": "Error"}}
            body = {"status": {"containerStatuses": [{
                "name": "patroni", "ready": running, "restartCount": member.restarts, "state": state,
            }]}}
            with contextlib.suppress(ApiError):
                self._api.request("PATCH", self._api.path("pods", member.name) + "/status", body,
                                  "application/merge-patch+json")
                self._reported[member.name] = (running, member.restarts)

    def _mounted_files(self, template: dict[str, Any]) -> dict[str, str]:
        for volume in template["spec"].get("volumes", []):
            if "configMap" in volume:
                cm = self._api.get("configmaps", volume["configMap"]["name"])
                if cm and "patroni.yml" in (cm.get("data") or {}):
                    data: dict[str, str] = cm["data"]
                    return data
        raise RolegenError(f"lab site {self.env}: the StatefulSet mounts no ConfigMap with patroni.yml")

    def _secrets(self) -> dict[str, dict[str, str]]:
        return {
            s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
            for s in self._api.list("secrets")
            if s.get("type") != "helm.sh/release.v1"
        }

    def _find_leader(self) -> Address | None:
        """Where `<release>-master` points: the running member whose Patroni answers /leader with 200."""
        for ordinal, member in self.members.items():
            # A paused Patroni answers nothing, as its readiness probe would not: no longer an endpoint.
            if ordinal not in self.paused and member.running and member.is_leader():
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
        raise TimeoutError(f"lab site {self.env}: {what} not reached in {timeout:.0f}s\n{logs}")

    def member_states(self) -> dict[str, dict[str, Any]]:
        return {
            m.name: m.rest("/patroni")[1] for o, m in self.members.items() if m.running and o not in self.paused
        }

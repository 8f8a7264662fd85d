"""The lab's node agent: one Node per site, and the kubelet's part for the Pods the real StatefulSet
controller creates (there is no scheduler: the agent binds them to its Node through `pods/binding`).

Owns the Pods' processes. Each Pod's container command runs as a local process exactly as lab members ran
before (members.py, runtime.py: uid 65534 via setpriv, scrubbed environment, the chart's patroni.yml with
loopback addresses, PGDATA on the Pod's PersistentVolume), authenticated as the Pod's ServiceAccount
(serviceaccount.py): Patroni and the startup guard run in-cluster, under the chart's RBAC.

Reported: phase, Pod IP (podstatus.py), conditions with Ready from the container's readinessProbe (httpGet,
probed at most every second), containerStatuses with restartCount. restartPolicy Always: a process that
exits (or is killed) starts again, with a back-off when it keeps crashing, unless its ordinal is held (a lab
fault: `held`, kept down until released; reported terminated meanwhile). Graceful deletion: SIGTERM, up
to the grace period, SIGKILL, then the Pod is deleted with grace 0. Not done: liveness probes, images. Other
Pods, by label: the lab's app (apps.py) and the standby guard (guardpods.py), one process each (processpods.py).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rolegen.errors import RolegenError
from rolegen_lab.controlplane.apiclient import ApiError, KubeApi
from rolegen_lab.controlplane.serviceaccount import pod_credentials
from rolegen_lab.node.apps import AppPods
from rolegen_lab.node.guardpods import GuardPods
from rolegen_lab.node.members import LabMember, remap_paths, resolve_env, secret_volume
from rolegen_lab.node.podstatus import ContainerState, comparable, node, node_status, now, pod_status
from rolegen_lab.node.processpods import secrets_of
from rolegen_lab.node.provisioner import Provisioner
from rolegen_lab.node.runtime import MemberRuntime

TICK = 0.25


@dataclass
class PodRun:
    uid: str
    name: str
    ip: str
    container: ContainerState
    start_time: str = field(default_factory=now)
    since: str = field(default_factory=now)
    started_once: bool = False
    started_at: float = 0.0
    not_before: float = 0.0  # restart back-off
    crashes: int = 0
    terminating: bool = False
    reported: dict[str, Any] | None = None
    next_probe: float = 0.0


class NodeAgent:
    """`start()` registers the Node and runs the loop; `stop()` stops every process it started."""

    def __init__(self, site: str, site_index: int, api: KubeApi, runtime: MemberRuntime, root: Path,
                 api_port: int, version: str) -> None:
        self.site, self.index, self.api, self.runtime, self.root = site, site_index, api, runtime, root
        self.api_port, self.version = api_port, version
        self.node_name = f"{site}-node"
        self.provisioner = Provisioner(api, root / site, runtime)
        self.members: dict[int, LabMember] = {}
        self.held: set[int] = set()  # ordinals not to (re)start: lab faults (kill --no-restart, site loss)
        self.pods: dict[str, PodRun] = {}
        self.lock = threading.RLock()
        self.errors: list[str] = []
        self._stop, self._paused = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        # Application Pods (labelled rolegen-lab/app: the lab's HTTP app, a dependent) and the standby guard's Pod
        # (the chart's, app.kubernetes.io/component standby-guard): run apart from the members.
        self.apps = AppPods(site, site_index, api, root, self._secrets)
        self.guards = GuardPods(site, site_index, api, root, runtime, api_port, self._secrets)
        self.others = (self.apps, self.guards)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.api.request("POST", "/api/v1/nodes", node(self.node_name, self.index))
        except ApiError as exc:
            if exc.status != 409:
                raise
        self.api.request("PATCH", f"/api/v1/nodes/{self.node_name}/status", node_status(self.version),
                         "application/merge-patch+json")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"node-{self.site}", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        for worker in self._workers:
            worker.join(timeout=60)
        for others in self.others:
            others.stop_all()
        with self.lock, ThreadPoolExecutor(max_workers=max(len(self.members), 1)) as pool:
            # All at once: each Patroni's shutdown (checkpoint, then exit) takes seconds, and nothing orders them.
            for stopping in [pool.submit(member.stop) for member in self.members.values()]:
                stopping.result()

    def report_stopped(self) -> None:
        """After a node outage, before restarting anything: every container that is not running is reported
        terminated (rolegen trusts a stopped container to run no postmaster)."""
        with self.lock:
            for run in self.pods.values():
                member = self.members.get(int(run.name.rsplit("-", 1)[1]))
                if run.terminating or (member is not None and member.running):
                    continue
                run.container.running = run.container.ready = False
                run.container.waiting, run.container.last_exit = None, 137
                self._report(run)

    def _loop(self) -> None:
        while not self._stop.wait(TICK):
            if self._paused.is_set():
                continue
            try:
                self.reconcile()
            except (ApiError, OSError, RolegenError, KeyError, ValueError) as exc:
                self.errors = [*self.errors[-50:], f"{type(exc).__name__}: {exc}"]

    # -- reconcile ------------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        self.provisioner.reconcile()
        seen: set[str] = set()
        for pod in self.api.list("pods"):
            meta, spec = pod["metadata"], pod["spec"]
            if not spec.get("nodeName"):
                if not meta.get("deletionTimestamp"):
                    self._bind(meta["name"])
                continue
            if spec["nodeName"] != self.node_name:
                continue
            seen.add(meta["uid"])
            others = next((o for o in self.others if o.owns(pod)), None)
            if others is not None:
                others.sync(pod)
            if others is not None or not meta["name"].rsplit("-", 1)[-1].isdigit():  # a Pod of no kind it runs
                continue
            if meta.get("deletionTimestamp"):
                self._terminate(pod)
            else:
                with self.lock:
                    self._sync(pod)
        for others in self.others:
            others.forget_missing(seen)
        with self.lock:
            gone = [run for uid, run in self.pods.items() if uid not in seen and not run.terminating]
        for run in gone:  # removed without a graceful deletion (grace 0): the process goes too
            self._background(self._finish, run, None)

    def _bind(self, name: str) -> None:
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name}}
        try:
            self.api.request("POST", self.api.path("pods", name) + "/binding", binding)
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    def member(self, name: str) -> LabMember:
        ordinal = int(name.rsplit("-", 1)[1])  # StatefulSet Pods: <statefulset>-<ordinal>
        member = self.members.get(ordinal)
        if member is None or member.name != name:
            member = self.members[ordinal] = LabMember(name, self.root / self.site / name, self.runtime)
        return member

    def _sync(self, pod: dict[str, Any]) -> None:
        meta, container = pod["metadata"], pod["spec"]["containers"][0]
        run = self.pods.get(meta["uid"])
        if run is None:
            ip = f"10.244.{self.index}.{10 + int(meta['name'].rsplit('-', 1)[1])}"
            run = self.pods[meta["uid"]] = PodRun(meta["uid"], meta["name"], ip,
                                                  ContainerState(container["name"], container.get("image", "")))
        member = self.member(meta["name"])
        if not member.running and int(meta["name"].rsplit("-", 1)[1]) in self.held:
            if member.process is not None:  # exited on its own meanwhile
                member.stop()
            if run.container.running or run.container.waiting is not None or run.container.last_exit is None:
                run.container.running = run.container.ready = False
                run.container.waiting, run.container.last_exit = None, 137
                run.since = now()
        elif member.running:
            self._probe(run, member, container)
        elif time.monotonic() >= run.not_before:
            crashed = member.process is not None  # exited on its own (None: killed by a lab fault)
            if crashed and member.process is not None:
                run.container.last_exit = member.process.process.returncode
                # The container's first process ended: the kernel SIGKILLs the rest of its PID namespace (a
                # witness guard's Patroni and PostgreSQL), no graceful stop.
                member.kill()
            if run.started_once:
                quick = crashed and time.monotonic() - run.started_at < 10
                run.crashes = run.crashes + 1 if quick else 0
                run.not_before = time.monotonic() + (min(10.0, 2.0 ** run.crashes) if quick else 0.0)
                run.container.restarts += 1
                run.started_once = False
                run.container.waiting = "CrashLoopBackOff" if run.crashes > 1 else "ContainerCreating"
                run.container.running = run.container.ready = False
            elif self._start(pod, member, container):
                run.started_once, run.started_at, run.next_probe = True, time.monotonic(), 0.0
                run.container.running, run.container.started_at, run.container.waiting = True, now(), None
        self._report(run)

    def _probe(self, run: PodRun, member: LabMember, container: dict[str, Any]) -> None:
        probe = container.get("readinessProbe") or {}
        if time.monotonic() < run.next_probe:
            return
        run.next_probe = time.monotonic() + min(float(probe.get("periodSeconds", 10)), 1.0)
        http = probe.get("httpGet")
        ready = True if http is None else 200 <= member.rest(str(http.get("path", "/")))[0] < 400
        if ready != run.container.ready:
            run.container.ready, run.since = ready, now()

    def _report(self, run: PodRun) -> None:
        status = pod_status(run.ip, run.start_time, run.container, run.since)
        if comparable(status) == run.reported:
            return
        self.api.request("PATCH", self.api.path("pods", run.name) + "/status", {"status": status},
                         "application/merge-patch+json")
        run.reported = comparable(status)

    # -- starting a Pod -------------------------------------------------------------------------------------
    def _start(self, pod: dict[str, Any], member: LabMember, container: dict[str, Any]) -> bool:
        """Start the container's process; False while something it needs (a bound volume) is missing."""
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        mounts: dict[str, Path] = {}
        secret_mounts: dict[str, Path] = {}
        files: dict[str, str] = {}
        secrets = self._secrets()
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})
            if "secret" in volume:
                directory = secret_volume(self.root / self.site / "pods" / member.name / "volumes" / mount["name"],
                                          volume["secret"], secrets, self.runtime)
                if directory is None:
                    return False  # the Secret does not exist (yet): a kubelet waits too
                secret_mounts[mount["mountPath"]] = directory
            elif "persistentVolumeClaim" in volume:
                directory = self.provisioner.volume_dir(volume["persistentVolumeClaim"]["claimName"])
                if directory is None:
                    return False
                mounts[mount["mountPath"]] = directory
            elif "configMap" in volume:
                cm = self.api.get("configmaps", volume["configMap"]["name"]) or {}
                files.update(cm.get("data") or {})
        if "patroni.yml" not in files:
            raise RolegenError(f"lab site {self.site}: Pod {member.name} mounts no ConfigMap with patroni.yml")
        static = yaml.safe_load(files["patroni.yml"])
        member.data_dir = self.provisioner.on_volume(str(static.get("postgresql", {}).get("data_dir", "")), mounts)
        env = remap_paths(resolve_env(container.get("env", []), member.name, secrets), secret_mounts)
        wrap, kubeconfig, extra, context = pod_credentials(
            self.api, pod, self.root / self.site / "pods" / member.name, self.runtime, self.api_port
        )
        config = remap_paths(member.configure(static, files, context), secret_mounts)
        member.start(config, {**env, **extra}, kubeconfig, container.get("command"), wrap)
        return True

    def _secrets(self) -> dict[str, dict[str, str]]:
        return secrets_of(self.api)

    # -- stopping a Pod -------------------------------------------------------------------------------------
    def _terminate(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        with self.lock:
            run = self.pods.setdefault(meta["uid"], PodRun(meta["uid"], meta["name"], "", ContainerState("", "")))
            if run.terminating:
                return
            run.terminating = True
        self._background(self._finish, run, float(meta.get("deletionGracePeriodSeconds") or 0))

    def _finish(self, run: PodRun, grace: float | None) -> None:
        """SIGTERM, SIGKILL after `grace`; then (graceful deletion) delete the Pod with grace 0."""
        member = self.members.get(int(run.name.rsplit("-", 1)[1]))
        if member is not None and member.name == run.name:
            member.stop(timeout=max(grace or 0, 1))
        if grace is not None:
            try:
                self.api.delete("pods", run.name, {"gracePeriodSeconds": 0, "preconditions": {"uid": run.uid}})
            except ApiError as exc:
                if exc.status != 409:  # 409: that uid is already gone
                    self.errors.append(str(exc))
        with self.lock:
            self.pods.pop(run.uid, None)

    def _background(self, target: Any, *args: Any) -> None:
        self._workers = [w for w in self._workers if w.is_alive()]
        worker = threading.Thread(target=target, args=args, daemon=True)
        self._workers.append(worker)
        worker.start()

"""The kubelet's part that the node agent's non-member Pods share (application Pods, apps.py; the standby guard's
Pod, guardpods.py): one local process per Pod, started once bound, Ready from a readiness probe on its HTTP port
(probed twice a second in a thread of its own), restarted if it exits, stopped on a graceful deletion (SIGTERM to
its process group, SIGKILL after the grace period, then the Pod is deleted with grace 0). What a Pod runs is the
subclass's (`_start`, `_probe_path`); the member Pods are the agent's own (agent.py) and never pass through here.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rolegen_lab.controlplane.apiclient import ApiError, KubeApi
from rolegen_lab.network.ports import reserve
from rolegen_lab.network.proxy import Address
from rolegen_lab.node.podstatus import ContainerState, comparable, now, pod_status


def secrets_of(api: KubeApi) -> dict[str, dict[str, str]]:
    """The namespace's Secrets, decoded (Helm's release records left out): what volumes and env refer to."""
    return {
        s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
        for s in api.list("secrets")
        if s.get("type") != "helm.sh/release.v1"
    }


@dataclass
class ProcessRun:
    """One Pod's process: `port` is the lab port its container's HTTP port is mapped to."""

    uid: str
    name: str
    ip: str
    port: int
    container: ContainerState
    process: subprocess.Popen[bytes] | None = None
    start_time: str = field(default_factory=now)
    since: str = field(default_factory=now)
    reported: dict[str, Any] | None = None
    terminating: bool = False


class ProcessPods:
    """The Pods of one site's node that a subclass runs (`owns`, `_start`, `_probe_path`); `first_ip` is the last
    octet its Pod IPs start from (10.244.<site>.<first_ip + n>)."""

    first_ip = 200

    def __init__(self, site: str, index: int, api: KubeApi) -> None:
        self.site, self.index, self.api = site, index, api
        self.runs: dict[str, ProcessRun] = {}
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.held = False  # a lab fault (the site lost): every process killed, none (re)started until released

    def endpoints(self) -> list[Address]:
        """Where this node's Pods listen that report Ready (what a Service in front of them would route to)."""
        with self.lock:
            return [("127.0.0.1", r.port) for r in self.runs.values() if r.container.ready and not r.terminating]

    def sync(self, pod: dict[str, Any]) -> None:
        """One look at a bound Pod of this node: start, probe, restart, or stop it."""
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            self._terminate(meta["uid"], meta["name"], float(meta.get("deletionGracePeriodSeconds") or 0))
            return
        with self.lock:
            run = self.runs.get(meta["uid"])
            if run is None:
                container = pod["spec"]["containers"][0]
                run = self.runs[meta["uid"]] = ProcessRun(
                    meta["uid"], meta["name"], f"10.244.{self.index}.{self.first_ip + len(self.runs) % 50}",
                    reserve(), ContainerState(container["name"], container.get("image", "")))
            if run.terminating:
                return
            if self.held:
                if run.container.running:  # killed with its site: reported terminated while it is held down
                    run.container.running = run.container.ready = False
                    run.container.waiting, run.container.last_exit, run.since = None, 137, now()
            elif run.process is None or run.process.poll() is not None:
                if run.process is not None:
                    run.container.restarts += 1
                    run.container.last_exit = run.process.returncode
                process = self._start(pod, run)
                if process is None:  # something it needs is missing yet (a Secret): a kubelet waits too
                    run.container.waiting = "ContainerCreating"
                else:
                    run.process = process
                    run.container.running, run.container.ready, run.container.waiting = True, False, None
                    run.container.started_at, run.since = now(), now()
                    threading.Thread(target=self._prober, args=(run, process, self._probe_path(pod)),
                                     daemon=True).start()
        self._report(run)

    def hold(self) -> None:
        """Kill every process at once (SIGKILL, no grace) and start none until `release()`: the site is lost."""
        with self.lock:
            self.held = True
            runs = list(self.runs.values())
        for run in runs:
            self._kill(run, 0.0)

    def release(self) -> None:
        with self.lock:
            self.held = False

    def forget_missing(self, seen: set[str]) -> None:
        """Pods removed without a graceful deletion: their processes go too."""
        with self.lock:
            gone = [r for uid, r in self.runs.items() if uid not in seen and not r.terminating]
        for run in gone:
            self._terminate(run.uid, run.name, None)

    def stop_all(self) -> None:
        with self.lock:
            runs = list(self.runs.values())
        for run in runs:
            self._kill(run, 1.0)

    # -- what a subclass runs ------------------------------------------------------------------------------------
    @staticmethod
    def owns(pod: dict[str, Any]) -> bool:
        raise NotImplementedError

    def _start(self, pod: dict[str, Any], run: ProcessRun) -> subprocess.Popen[bytes] | None:
        raise NotImplementedError

    def _probe_path(self, pod: dict[str, Any]) -> str | None:
        """The readiness probe's HTTP path on the run's port (None: Ready once running)."""
        raise NotImplementedError

    # -- the kubelet's part --------------------------------------------------------------------------------------
    def _prober(self, run: ProcessRun, process: subprocess.Popen[bytes], path: str | None) -> None:
        """The readiness probe, twice a second, in a thread of its own: a probe waiting on the database never
        holds up the agent's loop (the members' status reports)."""
        while not run.terminating and process.poll() is None:
            ready = True
            if path is not None:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=3)
                    conn.request("GET", path)
                    ready = 200 <= conn.getresponse().status < 400
                    conn.close()
                except OSError:
                    ready = False
            with self.lock:
                if ready != run.container.ready and not run.terminating and run.process is process:
                    run.container.ready, run.since = ready, now()
            time.sleep(0.5)
        with self.lock:
            if run.process is process and run.container.ready:  # exited: not Ready until its restart probes so
                run.container.ready, run.since = False, now()

    def _report(self, run: ProcessRun) -> None:
        status = pod_status(run.ip, run.start_time, run.container, run.since)
        if comparable(status) == run.reported:
            return
        try:
            self.api.request("PATCH", self.api.path("pods", run.name) + "/status", {"status": status},
                             "application/merge-patch+json")
        except ApiError as exc:
            if exc.status != 404:  # deleted meanwhile
                raise
        run.reported = comparable(status)

    def _terminate(self, uid: str, name: str, grace: float | None) -> None:
        with self.lock:
            run = self.runs.get(uid)
            if run is None or run.terminating:
                return
            run.terminating = True
            run.container.ready = False
        threading.Thread(target=self._finish, args=(run, grace), daemon=True).start()

    def _finish(self, run: ProcessRun, grace: float | None) -> None:
        self._kill(run, max(grace or 0, 1.0))
        if grace is not None:
            try:
                self.api.delete("pods", run.name, {"gracePeriodSeconds": 0, "preconditions": {"uid": run.uid}})
            except ApiError as exc:
                if exc.status not in (404, 409):
                    self.errors.append(str(exc))
        with self.lock:
            self.runs.pop(run.uid, None)

    @staticmethod
    def _kill(run: ProcessRun, grace: float) -> None:
        """SIGTERM to the process group, SIGKILL after `grace` (0: SIGKILL at once)."""
        process = run.process
        if process is None or process.poll() is not None:
            return
        if grace > 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

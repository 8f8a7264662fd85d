"""The node agent's part for application Pods (labelled `rolegen-lab/app`): the lab's HTTP app (rolegen_lab.app)
as a local process per Pod, the kubelet's way: started once bound, Ready from its readiness probe (GET /ready),
restarted if it exits, stopped on a graceful deletion (SIGTERM, SIGKILL after the grace period, then the Pod is
deleted with grace 0). The member Pods are the agent's own (agent.py); these never touch them.

Where a real Pod resolves `<release>-master` through DNS, the lab maps the Service's name to its site's proxy
(`services`): the app connects through what stands for the Service, as it would in a cluster.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolegen_lab.controlplane.apiclient import ApiError, KubeApi
from rolegen_lab.network.ports import reserve
from rolegen_lab.network.proxy import Address
from rolegen_lab.node.members import resolve_env
from rolegen_lab.node.podstatus import ContainerState, comparable, now, pod_status

APP_LABEL = "rolegen-lab/app"


@dataclass
class AppRun:
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


class AppPods:
    """Application Pods of one site's node; `services` maps a Service name to the address standing for it."""

    def __init__(self, site: str, index: int, api: KubeApi, root: Path,
                 secrets: Callable[[], dict[str, dict[str, str]]]) -> None:
        self.site, self.index, self.api, self.root, self.secrets = site, index, api, root, secrets
        self.services: dict[str, Address] = {}
        self.runs: dict[str, AppRun] = {}
        self.lock = threading.Lock()
        self.errors: list[str] = []

    @staticmethod
    def owns(pod: dict[str, Any]) -> bool:
        return APP_LABEL in (pod["metadata"].get("labels") or {})

    def endpoints(self) -> list[Address]:
        """Where this site's app instances listen that report Ready (what a load balancer in front would use)."""
        with self.lock:
            return [("127.0.0.1", r.port) for r in self.runs.values() if r.container.ready and not r.terminating]

    def sync(self, pod: dict[str, Any]) -> None:
        """One look at a bound app Pod of this node: start, probe, restart, or stop it."""
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            self._terminate(meta["uid"], meta["name"], float(meta.get("deletionGracePeriodSeconds") or 0))
            return
        with self.lock:
            run = self.runs.get(meta["uid"])
            if run is None:
                container = pod["spec"]["containers"][0]
                run = self.runs[meta["uid"]] = AppRun(
                    meta["uid"], meta["name"], f"10.244.{self.index}.{200 + len(self.runs) % 50}", reserve(),
                    ContainerState(container["name"], container.get("image", "")))
            if run.terminating:
                return
            if run.process is None or run.process.poll() is not None:
                if run.process is not None:
                    run.container.restarts += 1
                    run.container.last_exit = run.process.returncode
                run.process = self._start(pod, run)
                run.container.running, run.container.ready = True, False
                run.container.started_at, run.since = now(), now()
                threading.Thread(target=self._prober, args=(run, run.process), daemon=True).start()
        self._report(run)

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

    def _start(self, pod: dict[str, Any], run: AppRun) -> subprocess.Popen[bytes]:
        container = pod["spec"]["containers"][0]
        env = resolve_env(container.get("env", []), run.name, self.secrets())
        host, port = env.get("DATABASE_HOST", ""), env.get("DATABASE_PORT", "")
        if host in self.services:  # the Service's name, as a cluster's DNS would resolve it: its proxy
            host, port = self.services[host][0], str(self.services[host][1])
        directory = self.root / self.site / "apps" / run.name
        directory.mkdir(parents=True, exist_ok=True)
        environment = {"PATH": os.environ.get("PATH", ""), **env, "DATABASE_HOST": host, "DATABASE_PORT": port,
                       "APP_PORT": str(run.port), "APP_SITE": self.site}
        with open(directory / "app.log", "ab") as log:
            return subprocess.Popen([sys.executable, "-m", "rolegen_lab.app"], env=environment, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory,
                                    start_new_session=True)

    def _prober(self, run: AppRun, process: subprocess.Popen[bytes]) -> None:
        """The readiness probe, twice a second, in a thread of its own: a probe waiting on the database never
        holds up the agent's loop (the members' status reports)."""
        while not run.terminating and process.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=3)
                conn.request("GET", "/ready")
                ready = conn.getresponse().status == 200
                conn.close()
            except OSError:
                ready = False
            with self.lock:
                if ready != run.container.ready and not run.terminating:
                    run.container.ready, run.since = ready, now()
            time.sleep(0.5)

    def _report(self, run: AppRun) -> None:
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

    def _finish(self, run: AppRun, grace: float | None) -> None:
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
    def _kill(run: AppRun, grace: float) -> None:
        process = run.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

"""The node agent's part for application Pods (labelled `rolegen-lab/app`): the lab's HTTP app (rolegen_lab.app)
as a local process per Pod, the kubelet's way (processpods.py): started once bound, Ready from its readiness probe
(GET /ready), restarted if it exits, stopped on a graceful deletion. The member Pods are the agent's own
(agent.py); these never touch them.

Where a real Pod resolves `<release>-master` through DNS, the lab maps the Service's name to its site's proxy
(`services`): the app connects through what stands for the Service, as it would in a cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rolegen_lab.controlplane.apiclient import KubeApi
from rolegen_lab.network.proxy import Address
from rolegen_lab.node.members import resolve_env
from rolegen_lab.node.processpods import ProcessPods, ProcessRun

APP_LABEL = "rolegen-lab/app"


class AppPods(ProcessPods):
    """Application Pods of one site's node; `services` maps a Service name to the address standing for it."""

    def __init__(self, site: str, index: int, api: KubeApi, root: Path,
                 secrets: Callable[[], dict[str, dict[str, str]]]) -> None:
        super().__init__(site, index, api)
        self.root, self.secrets = root, secrets
        self.services: dict[str, Address] = {}

    @staticmethod
    def owns(pod: dict[str, Any]) -> bool:
        return APP_LABEL in (pod["metadata"].get("labels") or {})

    def _probe_path(self, pod: dict[str, Any]) -> str | None:
        return "/ready"

    def _start(self, pod: dict[str, Any], run: ProcessRun) -> subprocess.Popen[bytes]:
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

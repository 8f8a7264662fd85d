"""The node agent's part for the standby guard's Pod (the chart's `witnessGuard.standby` Deployment, selected by
its label `app.kubernetes.io/component: standby-guard`): `rolegen guard` as a local process, the kubelet's way
(processpods.py: Ready from the container's httpGet readinessProbe, restarted if it exits, SIGTERM then SIGKILL on
deletion).

What the kubelet would do, done with files: each volume is a directory of the Pod's (`<site>/pods/<pod>/volumes/
<name>`: a ConfigMap's keys and a Secret's items as files, an emptyDir kept across container restarts); each init
container's command runs to completion first (the chart's copies the specs from the ConfigMap into the writable
emptyDir); then the container's command and args, with every path under a mount moved to its directory, the image's
`rolegen` and `python3` the lab's own, and the container port (`--listen=0.0.0.0:PORT`, the probe's named port) a
lab port on loopback. The Pod authenticates as its ServiceAccount (controlplane/serviceaccount.py): as root its
token is bind-mounted on /var/run/secrets/kubernetes.io/serviceaccount in a private mount namespace, so the
kubeconfig Secret's `tokenFile` there is the Pod's own, and its host name is the Pod's (the guard's Events name it);
otherwise the Secret's files name the token's directory.
Not done: token refresh (the token is good for an hour), liveness probes, resources.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rolegen_lab.controlplane.apiclient import KubeApi
from rolegen_lab.controlplane.serviceaccount import pod_credentials
from rolegen_lab.network.proxy import Address
from rolegen_lab.node.members import remap_paths, resolve_env, secret_volume
from rolegen_lab.node.processpods import ProcessPods, ProcessRun
from rolegen_lab.node.runtime import MemberRuntime

COMPONENT_LABEL, GUARD_COMPONENT = "app.kubernetes.io/component", "standby-guard"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# As root, the Pod's own host name (its name, as in a container: the guard's Events name it as their instance).
_HOSTNAME = ("unshare", "--uts", "--", "/bin/sh", "-c", 'hostname "$0" && exec "$@"')
INIT_TIMEOUT = 60.0


def image_command(words: list[str], mounts: dict[str, Path], port: int | None = None) -> list[str]:
    """A container's command + args as the lab runs them: the image's `rolegen` and `python3` the lab's own
    interpreter, paths under a mount (alone, or an option's `--x=PATH`) in its directory, and `--listen=H:P` on
    loopback at the lab's `port`."""
    mapped: list[str] = []
    for word in words:
        option, equals, value = word.partition("=")
        if word == "rolegen":
            mapped += [sys.executable, "-m", "rolegen"]
        elif word == "python3":
            mapped.append(sys.executable)
        elif equals and option == "--listen" and port is not None:
            mapped.append(f"--listen=127.0.0.1:{port}")
        elif equals and option.startswith("--"):
            mapped.append(f"{option}={remap_paths(value, mounts)}")
        else:
            mapped.append(remap_paths(word, mounts))
    return mapped


class GuardPods(ProcessPods):
    """The standby guard's Pod of one site's node (one, with the chart's Recreate strategy); `endpoint()` is where
    its promise port answers while it is Ready: what the chart's Service (and the claim through the tunnel) routes
    to."""

    first_ip = 150

    def __init__(self, site: str, index: int, api: KubeApi, root: Path, runtime: MemberRuntime, api_port: int,
                 secrets: Callable[[], dict[str, dict[str, str]]]) -> None:
        super().__init__(site, index, api)
        self.root, self.runtime, self.api_port, self.secrets = root, runtime, api_port, secrets

    @staticmethod
    def owns(pod: dict[str, Any]) -> bool:
        return (pod["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == GUARD_COMPONENT

    def endpoint(self) -> Address | None:
        ready = self.endpoints()
        return ready[0] if ready else None

    def running(self) -> bool:
        """A guard Pod's process runs, or the Pods are held down with their site (False: it exited)."""
        with self.lock:
            return self.held or any(r.process is not None and r.process.poll() is None and not r.terminating
                                    for r in self.runs.values())

    def directory(self, name: str) -> Path:
        return self.root / self.site / "pods" / name

    def log(self, name: str) -> str:
        path = self.directory(name) / "guard.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _probe_path(self, pod: dict[str, Any]) -> str | None:
        http = (pod["spec"]["containers"][0].get("readinessProbe") or {}).get("httpGet")
        return None if http is None else str(http.get("path", "/"))

    def _start(self, pod: dict[str, Any], run: ProcessRun) -> subprocess.Popen[bytes] | None:
        directory = self.directory(run.name)
        volumes = self._volumes(pod, directory)
        if volumes is None:
            return None
        wrap, _, extra, _ = pod_credentials(self.api, pod, directory, self.runtime, self.api_port)
        if not wrap:  # no mount namespace: the Secret's files that name the token's path name where it is
            for source in [v for v in pod["spec"].get("volumes", []) if "secret" in v]:
                for path in volumes[source["name"]].iterdir():
                    path.write_text(path.read_text().replace(TOKEN_DIR, str(directory / "serviceaccount")))
        log = directory / "guard.log"
        for init in pod["spec"].get("initContainers", []):
            mounts = {m["mountPath"]: volumes[m["name"]] for m in init.get("volumeMounts", [])}
            with log.open("ab") as out:
                done = subprocess.run(image_command([*init.get("command", []), *init.get("args", [])], mounts),
                                      stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory,
                                      env=self._environment(init, run.name, mounts, {}), timeout=INIT_TIMEOUT,
                                      check=False)
            if done.returncode != 0:
                self.errors = [*self.errors[-50:], f"{run.name}: init container {init['name']} exited "
                                                    f"{done.returncode} (see {log})"]
                return None
        container = pod["spec"]["containers"][0]
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
        command = image_command([*container.get("command", []), *container.get("args", [])], mounts, run.port)
        with log.open("ab") as out:
            uts = (*_HOSTNAME, run.name) if wrap else ()
            return subprocess.Popen([*uts, *wrap, *command], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=directory, start_new_session=True,
                                    env=self._environment(container, run.name, mounts, extra))

    def _volumes(self, pod: dict[str, Any], directory: Path) -> dict[str, Path] | None:
        """Each volume's directory, its files written as the kubelet would (None: a ConfigMap or Secret is missing
        yet; a kubelet waits too)."""
        found: dict[str, Path] = {}
        secrets = self.secrets()
        for volume in pod["spec"].get("volumes", []):
            path = directory / "volumes" / volume["name"]
            if "secret" in volume:
                written = secret_volume(path, volume["secret"], secrets, self.runtime)
                if written is None:
                    return None
            elif "configMap" in volume:
                config_map = self.api.get("configmaps", volume["configMap"]["name"])
                if config_map is None:
                    return None
                path.mkdir(parents=True, exist_ok=True)
                data = config_map.get("data") or {}
                for item in volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]:
                    (path / item["path"]).write_text(data[item["key"]])
            else:  # an emptyDir (the token's projected volume is pod_credentials')
                path.mkdir(parents=True, exist_ok=True)
            found[volume["name"]] = path
        return found

    @staticmethod
    def _environment(container: dict[str, Any], pod: str, mounts: dict[str, Path],
                     extra: dict[str, str]) -> dict[str, str]:
        """Built from scratch, as a container's: its own variables (paths moved), the image's PATH (the lab's: its
        kubectl) and the in-cluster API address."""
        env = remap_paths(resolve_env(container.get("env", []), pod, {}), mounts)
        return {"PATH": os.environ.get("PATH", ""), "LANG": os.environ.get("LANG", "C.UTF-8"), **env, **extra}

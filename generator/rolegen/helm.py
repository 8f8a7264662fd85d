"""Helm releases through the embedded SDK (helm-python-sdk): no helm binary, same kubeconfig as kubectl."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.errors import RolegenError
from rolegen.kube import Cluster
from rolegen.resources import chart_dir


@dataclass(frozen=True)
class ReleaseInfo:
    name: str
    revision: int
    status: str
    values: dict[str, Any]


def _sdk() -> Any:
    try:
        import helm_python
    except ImportError:
        raise RolegenError(
            "embedded Helm is not installed",
            hint="reinstall rolegen (pip install .): helm-python-sdk is a base dependency",
        ) from None
    return helm_python


class Releases:
    """Helm actions on one cluster (kubeconfig context + namespace of `cluster`)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def _config(self) -> Any:
        sdk = _sdk()
        return sdk.Config(
            kubeconfig_path=str(self.cluster.kubeconfig) if self.cluster.kubeconfig else None,
            kube_context=self.cluster.context,
            namespace=self.cluster.namespace,
        )

    def get(self, name: str) -> ReleaseInfo | None:
        sdk = _sdk()
        try:
            with self._config() as cfg:
                status = cfg.status(name)
                values = cfg.get_values(name) or {}
        except sdk.HelmNotFoundError:
            return None
        except sdk.HelmError as exc:
            raise self._error("read release", name, exc) from None
        # helm-python-sdk 0.2.2 flattens the release: top-level `revision` and `status` (seen on a real run),
        # not Helm's Go-struct `version` / `info.status`; accept both shapes.
        info = status.get("info") or {}
        revision = status.get("revision", status.get("version", 0))
        state = status.get("status") or info.get("status") or "unknown"
        return ReleaseInfo(name, int(revision), str(state), dict(values))

    def upgrade_install(self, name: str, values: dict[str, Any], chart: Path | None = None) -> ReleaseInfo:
        """`helm upgrade --install` with exactly `values` (no reuse of old ones)."""
        sdk = _sdk()
        path = str(chart or chart_dir())
        try:
            with self._config() as cfg:
                try:
                    cfg.status(name)
                except sdk.HelmNotFoundError:
                    cfg.install(path, name, values)
                else:
                    cfg.upgrade(path, name, values, reset_values=True)
        except sdk.HelmError as exc:
            raise self._error("upgrade", name, exc) from None
        release = self.get(name)
        if release is None:
            raise RolegenError(f"release {name} vanished right after helm upgrade on context {self.cluster.name}")
        return release

    def _error(self, action: str, name: str, exc: Exception) -> RolegenError:
        text = str(exc)
        if any(s in text.lower() for s in ("connection refused", "no such host", "unreachable", "i/o timeout")):
            return RolegenError(
                f"cannot reach the cluster of context {self.cluster.name} to {action} {name}: {text}",
                hint="check the kubeconfig context and that the API server is reachable",
            )
        return RolegenError(f"helm {action} {name} failed on context {self.cluster.name}: {text}")

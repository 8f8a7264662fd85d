"""Helm releases through the embedded SDK (helm-python-sdk): no helm binary, same kubeconfig as kubectl."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.errors import RolegenError
from rolegen.kubectl import Cluster
from rolegen.package_data import chart_dir


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

    def upgrade_install(
        self, name: str, values: dict[str, Any], chart: Path | None = None, yield_config_of: str | None = None
    ) -> ReleaseInfo:
        """`helm upgrade --install` with exactly `values` (no reuse of old ones).

        Helm 4 upgrades with server-side apply. Once Patroni (or `kubectl patch`, or rolegen itself) has
        rewritten the `config` annotation of ConfigMap `yield_config_of`, that field belongs to them, and any
        upgrade whose rendered annotation differs from the live one fails with a conflict, even with unchanged
        values. When that field is the only conflict, the upgrade is retried forcing it (`--force-conflicts`):
        rolegen writes the annotation itself right after Helm (apply step 5), so Helm need not keep it.
        """
        sdk = _sdk()
        path = str(chart or chart_dir())
        try:
            with self._config() as cfg:
                try:
                    cfg.status(name)
                except sdk.HelmNotFoundError:
                    cfg.install(path, name, values)
                else:
                    try:
                        cfg.upgrade(path, name, values, reset_values=True)
                    except sdk.HelmError as exc:
                        if yield_config_of is None or not only_config_conflict(str(exc), yield_config_of):
                            raise
                        _upgrade_forcing_conflicts(cfg, path, name, values)
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


_CONFLICT_PATH = re.compile(r"(?<![\w/])\.[\w-]+(?:\.[\w/-]+)*")


def only_config_conflict(message: str, config_map: str) -> bool:
    """True when Helm's server-side apply failed on ConfigMap `config_map` and on its `config` annotation only."""
    head, sep, tail = message.partition("Apply failed with")
    if not sep or f"/{config_map} /v1, Kind=ConfigMap" not in head:
        return False
    paths = set(_CONFLICT_PATH.findall(tail.partition(":")[2]))
    return paths == {".metadata.annotations.config"}


def _upgrade_forcing_conflicts(cfg: Any, chart: str, name: str, values: dict[str, Any]) -> None:
    """`helm upgrade --force-conflicts`. helm-python-sdk 0.2.2 (pinned) has no keyword for it, but its C layer
    reads `force_conflicts` from the upgrade options JSON: the same call as Config.upgrade, plus that option."""
    from helm_python import _native

    handle, ref = cfg._chart_args(chart)
    options = json.dumps({"reset_values": True, "force_conflicts": True})
    _native.call_string("helm_upgrade", cfg._raw(), cfg._context_arg(None), handle, ref, name, json.dumps(values),
                        options)

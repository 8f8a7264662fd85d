"""Helm releases through the embedded SDK (helm-python-sdk): no helm binary, same kubeconfig as kubectl."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.cluster.kubectl import Cluster
from rolegen.errors import RolegenError
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
        self, name: str, values: dict[str, Any], chart: Path | str | None = None, config_map: str | None = None,
        *, version: str | None = None, repository: str | None = None,
    ) -> ReleaseInfo:
        """`helm upgrade --install` with exactly `values` (no reuse of old ones).

        Helm never changes the `config` annotation of an existing ConfigMap `config_map`: the chart carries the
        live annotation through (`lookup`), so the upgrade applies the value that is there. Helm 4 upgrades with
        server-side apply; if Patroni, `patronictl edit-config` or rolegen writes the annotation between the
        chart's lookup and the apply, the API server refuses the stale value (a conflict on that field alone):
        the upgrade is tried again once, with a fresh lookup, and never with `--force-conflicts`, which would
        overwrite what was just written.

        `chart`: the database's chart by default; a dependent's (a path, an oci:// reference, or a name in
        `repository`) at `version`.
        """
        sdk = _sdk()
        path = str(chart or chart_dir())
        # Only what is set: the SDK's defaults stay (the database's chart is a directory, with no version).
        where = {key: value for key, value in (("chart_version", version), ("chart_repo_url", repository)) if value}
        try:
            with self._config() as cfg:
                try:
                    cfg.status(name)
                except sdk.HelmNotFoundError:
                    cfg.install(path, name, values, **where)
                else:
                    try:
                        cfg.upgrade(path, name, values, reset_values=True, **where)
                    except sdk.HelmError as exc:
                        if config_map is None or not only_config_conflict(str(exc), config_map):
                            raise
                        cfg.upgrade(path, name, values, reset_values=True, **where)
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

"""Test-only: chart/ through the embedded Helm SDK (helm-python-sdk, no helm binary): render, lint, and read back
the Patroni configuration the chart deploys, so tests check exactly what a release would run. (rolegen itself
installs and upgrades releases through rolegen.cluster.helm.)"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

from rolegen.errors import RolegenError
from rolegen.package_data import chart_dir

STATIC_CONFIG_KEY = "patroni.yml"
_HINT_VALUES = "fix the values named above (chart/values.schema.json types them)"
_VALIDATE_MARKER = "VALUES VALIDATION:"
_SEVERITIES = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


@dataclass(frozen=True, order=True)
class LintMessage:
    """One `helm lint` finding."""

    severity: int  # 0 unknown, 1 info, 2 warning, 3 error (Helm's numbering)
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{_SEVERITIES.get(self.severity, self.severity)}] {self.path}: {self.message.strip()}"


@contextmanager
def _loaded(chart_path: Path | None) -> Iterator[helm_python.Chart]:
    path = Path(chart_path) if chart_path is not None else chart_dir()
    try:
        chart = helm_python.Chart.load(path)
    except helm_python.HelmError as exc:
        raise RolegenError(f"cannot load the chart at {path}: {exc}", hint="check chart/Chart.yaml") from exc
    with chart:
        yield chart


def render_manifests(
    values: dict[str, Any], release: str, namespace: str, chart_path: Path | None = None
) -> list[dict[str, Any]]:
    """Render the chart offline (as `helm template`) and return its objects, in template order.

    Helm enforces values.schema.json and the chart's validateValues here; both become a RolegenError.
    """
    with _loaded(chart_path) as chart:
        try:
            rendered: dict[str, str] = chart.render(values, name=release, namespace=namespace, is_install=True)
        except helm_python.HelmValuesError as exc:
            raise RolegenError(f"chart values rejected: {exc}".rstrip(), hint=_HINT_VALUES) from exc
        except helm_python.HelmError as exc:
            if _VALIDATE_MARKER in str(exc):  # the chart's validateValues: one fail with every message
                detail = str(exc).split(_VALIDATE_MARKER, 1)[1].strip()
                raise RolegenError(f"chart values rejected:\n{detail}", hint=_HINT_VALUES) from exc
            raise RolegenError(f"chart render failed: {exc}".rstrip(), hint="a template error: check chart/") from exc
    manifests: list[dict[str, Any]] = []
    for name in sorted(rendered):
        if not name.endswith((".yaml", ".yml")):
            continue  # NOTES.txt and the like
        for doc in yaml.safe_load_all(rendered[name]):
            if doc is not None:
                manifests.append(doc)
    return manifests


def render_live(
    values: dict[str, Any], release: str, namespace: str, kubeconfig: Path, *, upgrade: bool = True
) -> list[dict[str, Any]]:
    """Render the chart as `helm upgrade` does against a cluster (`lookup` reads live objects through
    `kubeconfig`'s current context); nothing is created. Returns the objects, in template order."""
    with _loaded(None) as chart, helm_python.Config(kubeconfig_path=str(kubeconfig), namespace=namespace) as cfg:
        rendered: dict[str, str] = cfg.render(chart, values, name=release, namespace=namespace,
                                              is_upgrade=upgrade, is_install=not upgrade)
    return [doc for name in sorted(rendered) if name.endswith((".yaml", ".yml"))
            for doc in yaml.safe_load_all(rendered[name]) if doc is not None]


def lint(
    values: dict[str, Any] | None = None,
    chart_path: Path | None = None,
    namespace: str = "default",
    strict: bool = True,
) -> list[LintMessage]:
    """`helm lint --strict` with `values`; returns every finding (info included), most severe first."""
    path = Path(chart_path) if chart_path is not None else chart_dir()
    try:
        report: dict[str, Any] = helm_python.lint(path, values, strict=strict, namespace=namespace)
    except helm_python.HelmError as exc:
        raise RolegenError(f"helm lint could not run on {path}: {exc}", hint="check chart/Chart.yaml") from exc
    messages = {
        LintMessage(int(m.get("severity", 0)), str(m.get("path", "")), str(m.get("error", "")))
        for m in report.get("messages", [])
    }
    return sorted(messages, key=lambda m: (-m.severity, m.path, m.message))


def find(manifests: Sequence[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of `kind` (and `name`, if given) among `manifests`."""
    found = [
        m for m in manifests if m.get("kind") == kind and (name is None or m.get("metadata", {}).get("name") == name)
    ]
    if len(found) != 1:
        what = f"{kind}/{name}" if name else kind
        raise RolegenError(f"expected exactly one {what} in the rendered chart, found {len(found)}")
    return found[0]


def dcs_config_map(manifests: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`<scope>-config`: the ConfigMap carrying Patroni's dynamic configuration in its `config` annotation."""
    candidates = [
        m
        for m in manifests
        if m.get("kind") == "ConfigMap" and "config" in (m.get("metadata", {}).get("annotations") or {})
    ]
    if len(candidates) != 1:
        raise RolegenError(f"expected one ConfigMap with a `config` annotation, found {len(candidates)}")
    return candidates[0]


def patroni_config(manifests: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(static patroni.yml, dynamic config) exactly as the chart deploys them.

    The static part is the `patroni.yml` the members read; per-member values (name, addresses) and the
    credentials come from the container environment (see `member_env`). The dynamic part is the JSON of the
    `config` annotation of `<scope>-config`.
    """
    static_maps = [m for m in manifests if m.get("kind") == "ConfigMap" and STATIC_CONFIG_KEY in (m.get("data") or {})]
    if len(static_maps) != 1:
        raise RolegenError(f"expected one ConfigMap with {STATIC_CONFIG_KEY}, found {len(static_maps)}")
    static = yaml.safe_load(static_maps[0]["data"][STATIC_CONFIG_KEY])
    dynamic = json.loads(dcs_config_map(manifests)["metadata"]["annotations"]["config"])
    if not isinstance(static, dict) or not isinstance(dynamic, dict):
        raise RolegenError("the chart's Patroni configuration is not a mapping")
    return static, dynamic


def static_files(manifests: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Files the members find in /etc/patroni (patroni.yml and, with an app Secret, post-bootstrap.sh)."""
    static_map = next(
        (m for m in manifests if m.get("kind") == "ConfigMap" and STATIC_CONFIG_KEY in (m.get("data") or {})), None
    )
    if static_map is None:
        raise RolegenError(f"no ConfigMap with {STATIC_CONFIG_KEY} in the rendered chart")
    return {str(k): str(v) for k, v in static_map["data"].items()}


def member_env(manifests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Patroni container's environment (values and Secret/field references) as the StatefulSet sets it."""
    statefulset = find(manifests, "StatefulSet")
    containers = statefulset["spec"]["template"]["spec"]["containers"]
    patroni = next((c for c in containers if c.get("name") == "patroni"), None)
    if patroni is None:
        raise RolegenError("the StatefulSet has no `patroni` container")
    env: list[dict[str, Any]] = patroni.get("env", [])
    return env

"""chart/ through the embedded Helm SDK (helm-python-sdk, no helm binary): render, lint, and read back the
Patroni configuration the chart deploys, so tests and the lab run exactly what a release would."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rolegen.errors import RolegenError
from rolegen.resources import chart_dir

if TYPE_CHECKING:
    import helm_python

STATIC_CONFIG_KEY = "patroni.yml"
_HINT_VALUES = "fix the values named above (chart/values.schema.json is schemas/values.schema.json)"
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


def _helm() -> Any:
    try:
        import helm_python
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RolegenError(
            "the embedded Helm SDK (helm-python-sdk) is not installed",
            hint="reinstall rolegen (pip install .): helm-python-sdk is a base dependency",
        ) from exc
    return helm_python


@contextmanager
def _loaded(chart_path: Path | None) -> Iterator[helm_python.Chart]:
    helm = _helm()
    path = Path(chart_path) if chart_path is not None else chart_dir()
    try:
        chart = helm.Chart.load(path)
    except helm.HelmError as exc:
        raise RolegenError(f"cannot load the chart at {path}: {exc}", hint="check chart/Chart.yaml") from exc
    with chart:
        yield chart


def render_manifests(
    values: dict[str, Any], release: str, namespace: str, chart_path: Path | None = None
) -> list[dict[str, Any]]:
    """Render the chart offline (as `helm template`) and return its objects, in template order.

    Helm enforces values.schema.json and the chart's validateValues here; both become a RolegenError.
    """
    helm = _helm()
    with _loaded(chart_path) as chart:
        try:
            rendered: dict[str, str] = chart.render(values, name=release, namespace=namespace, is_install=True)
        except helm.HelmValuesError as exc:
            raise RolegenError(f"chart values rejected: {exc}".rstrip(), hint=_HINT_VALUES) from exc
        except helm.HelmError as exc:
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


def lint(
    values: dict[str, Any] | None = None,
    chart_path: Path | None = None,
    namespace: str = "default",
    strict: bool = True,
) -> list[LintMessage]:
    """`helm lint --strict` with `values`; returns every finding (info included), most severe first."""
    helm = _helm()
    path = Path(chart_path) if chart_path is not None else chart_dir()
    try:
        report: dict[str, Any] = helm.lint(path, values, strict=strict, namespace=namespace)
    except helm.HelmError as exc:
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

"""The chart's opt-in exporter (`monitoring.exporter`, `monitoring.podMonitor`) through real Helm: nothing unless
asked; a Deployment running `rolegen exporter`, its Service, ServiceAccount and read-only Role, with labels and
selectors that never mix its Pod with the members; a PodMonitor for the Prometheus Operator; bad values refused by
the one values schema (Helm's and `rolegen validate`'s)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from tests import helm_chart as chart
from tests.test_chart import CHART, ENVS, KUBE_VERSION, NAMESPACE, generated_values

from rolegen.errors import RolegenError
from rolegen.offline.validate import schema_problems

EXPORTER = {"enabled": True, "image": {"repository": "registry.example/rolegen", "tag": "0.1.0"},
            "environmentsConfigMap": "rolegen-environments", "kubeconfigSecret": "rolegen-kubeconfig"}


def values(**monitoring: Any) -> dict[str, Any]:
    data = generated_values(ENVS[0])
    data["monitoring"] = {**data.get("monitoring", {}), **monitoring}
    return data


def render(**monitoring: Any) -> list[dict[str, Any]]:
    return chart.render_manifests(values(**monitoring), "db", NAMESPACE, CHART)


def exporter_objects(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in manifests
            if m["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "exporter"}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_nothing_of_the_exporter_renders_unless_enabled() -> None:
    assert exporter_objects(render()) == {}
    assert exporter_objects(render(exporter={**EXPORTER, "enabled": False})) == {}


def test_enabled_it_renders_a_deployment_service_and_read_only_rbac_with_their_own_selector() -> None:
    manifests = render(exporter=EXPORTER)
    found = exporter_objects(manifests)
    assert sorted(found) == ["Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"]
    for manifest in found.values():
        assert manifest["metadata"]["name"] == "db-exporter"
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "rolegen-patroni-exporter"
        assert labels["app.kubernetes.io/instance"] == "db" and labels["app.kubernetes.io/part-of"] == "rolegen-patroni"
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
    deployment, service = found["Deployment"], found["Service"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == service["spec"]["selector"] == {"app.kubernetes.io/name": "rolegen-patroni-exporter",
                                                       "app.kubernetes.io/instance": "db"}
    pod = deployment["spec"]["template"]
    assert matches(selector, pod["metadata"]["labels"])
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "9847",
                                              "prometheus.io/path": "/metrics"}
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9847, "targetPort": "metrics", "protocol": "TCP"}]
    # The members' selectors never take the exporter's Pod, nor its selector a member.
    statefulset = chart.find(manifests, "StatefulSet")
    members = [statefulset["spec"]["selector"]["matchLabels"],
               chart.find(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
               chart.find(manifests, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
               *(m["spec"]["selector"] for m in manifests if m["kind"] == "Service" and m is not service)]
    assert not any(matches(s, pod["metadata"]["labels"]) for s in members)
    assert not matches(selector, statefulset["spec"]["template"]["metadata"]["labels"])
    read_only = [{"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list"]}]
    assert found["Role"]["rules"] == read_only
    assert found["RoleBinding"]["subjects"][0]["name"] == pod["spec"]["serviceAccountName"] == "db-exporter"


def test_the_container_runs_rolegen_exporter_on_the_mounted_specs_and_kubeconfig() -> None:
    pod = exporter_objects(render(exporter={**EXPORTER, "port": 9100, "interval": 30}))["Deployment"]["spec"][
        "template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example/rolegen:0.1.0"
    assert [*container["command"], *container["args"]] == [
        "rolegen", "exporter", "--dir=/etc/rolegen/environments", "--kubeconfig=/etc/rolegen/kubeconfig/kubeconfig",
        "--listen=0.0.0.0:9100", "--interval=30"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["environments"]["configMap"] == {"name": "rolegen-environments"}  # names only, no content
    assert volumes["kubeconfig"]["secret"]["secretName"] == "rolegen-kubeconfig"


def test_a_pod_monitor_renders_with_the_exporter_and_its_labels() -> None:
    assert "PodMonitor" not in exporter_objects(render(exporter=EXPORTER))
    found = exporter_objects(render(exporter=EXPORTER, podMonitor={"enabled": True, "labels": {"release": "prom"}}))
    monitor = found["PodMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"] == found["Deployment"]["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]


def test_helm_lint_strict_is_clean_with_the_exporter() -> None:
    findings = chart.lint(values(exporter=EXPORTER, podMonitor={"enabled": True}), CHART, namespace=NAMESPACE,
                          strict=True)
    assert [str(m) for m in findings if m.severity >= 2] == []


@pytest.mark.parametrize(("monitoring", "named"), [
    ({"exporter": {"enabled": "yes"}}, "at '/monitoring/exporter/enabled': got string, want boolean"),
    ({"exporter": {**EXPORTER, "port": "metrics"}}, "at '/monitoring/exporter/port': got string, want integer"),
    ({"exporter": {**EXPORTER, "interval": 0}}, "at '/monitoring/exporter/interval'"),
    ({"exporter": {**EXPORTER, "kubeconfigSecret": ""}}, "at '/monitoring/exporter/kubeconfigSecret'"),
    ({"exporter": {"enabled": True}}, "at '/monitoring/exporter/image/repository'"),
    ({"podMonitor": {"enabled": True}}, "at '/monitoring/exporter/enabled'"),
    ({"exporter": {**EXPORTER, "replicas": 2}}, "additional properties 'replicas' not allowed"),
], ids=["enabled-yes", "port-string", "interval-0", "no-kubeconfig", "no-image", "podmonitor-alone", "unknown-key"])
def test_bad_exporter_values_are_refused_by_the_schema(monitoring: dict[str, Any], named: str) -> None:
    with pytest.raises(RolegenError) as caught:
        chart.render_manifests(values(**monitoring), "db", NAMESPACE, CHART)
    assert "chart values rejected" in caught.value.message and named in caught.value.message


def test_rolegen_validate_refuses_a_bad_type_by_its_path() -> None:
    data = values(exporter={**EXPORTER, "port": "metrics"})
    assert [p.path for p in schema_problems(data, "values", "values.yaml")] == ["$.monitoring.exporter.port"]

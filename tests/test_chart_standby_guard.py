"""The chart's standby guard (`witnessGuard.standby`) through real Helm: nothing unless asked; a Deployment of one
Pod running `rolegen guard --env <site>` (never two at once), its Service, ServiceAccount and a Role with what the
failover steps do on the site, a NetworkPolicy admitting the peer, and, where the cluster hosts the claim, a
TransportServerClaim for its port; bad values refused by the one values schema or the chart's validateValues."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from tests import helm_chart as chart
from tests.test_chart import CHART, ENVS, KUBE_VERSION, NAMESPACE, TSC_SCHEMA, generated_values

from rolegen.errors import RolegenError
from rolegen.offline.validate import schema_problems

STANDBY = {"enabled": True, "image": {"repository": "registry.example/rolegen", "tag": "0.1.0"},
           "environmentsConfigMap": "rolegen-environments", "kubeconfigSecret": "rolegen-guard-kubeconfig"}
AUTOMATIC = {"mode": "automatic", "site": "site-a", "namespace": "rolegen-witness", "lease": "patroni-pair",
             "existingSecret": "patroni-witness", "promiseUrl": "http://db-guard-site-b:8099"}


def values(standby: dict[str, Any] | None = None, **witness: Any) -> dict[str, Any]:
    data = copy.deepcopy(generated_values(ENVS[0]))
    data["witnessGuard"] = {**AUTOMATIC, **witness, **({"standby": standby} if standby is not None else {})}
    return data


def render(standby: dict[str, Any] | None = None, **witness: Any) -> list[dict[str, Any]]:
    return chart.render_manifests(values(standby, **witness), "db", NAMESPACE, CHART)


def guard_objects(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in manifests
            if m["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "standby-guard"}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_nothing_of_the_standby_guard_renders_unless_enabled() -> None:
    assert guard_objects(render()) == {}
    assert guard_objects(render({**STANDBY, "enabled": False})) == {}
    assert guard_objects(chart.render_manifests(generated_values(ENVS[0]), "db", NAMESPACE, CHART)) == {}


def test_enabled_it_renders_one_guard_pod_a_service_and_its_own_rbac_and_selector() -> None:
    data = values(STANDBY)
    data["tsc"]["create"] = False  # the claim is a cluster fact: below
    manifests = chart.render_manifests(data, "db", NAMESPACE, CHART)
    found = guard_objects(manifests)
    assert sorted(found) == ["Deployment", "NetworkPolicy", "Role", "RoleBinding", "Service", "ServiceAccount"]
    for manifest in found.values():
        assert manifest["metadata"]["name"] == "db-guard"
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "rolegen-patroni-guard"
        assert labels["app.kubernetes.io/instance"] == "db" and labels["app.kubernetes.io/version"] == "0.1.0"
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
    deployment, service = found["Deployment"], found["Service"]
    # One guard at a time, also across a rollout: a promise one granted would not hold another back.
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == service["spec"]["selector"] == {"app.kubernetes.io/name": "rolegen-patroni-guard",
                                                       "app.kubernetes.io/instance": "db"}
    pod = deployment["spec"]["template"]
    assert matches(selector, pod["metadata"]["labels"])
    assert service["spec"]["ports"] == [{"name": "guard", "port": 8099, "targetPort": "guard", "protocol": "TCP"}]
    # The members' selectors never take the guard's Pod, nor its selector a member.
    statefulset = chart.find(manifests, "StatefulSet")
    members = [statefulset["spec"]["selector"]["matchLabels"],
               chart.find(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
               chart.find(manifests, "NetworkPolicy", "db")["spec"]["podSelector"]["matchLabels"],
               *(m["spec"]["selector"] for m in manifests if m["kind"] == "Service" and m is not service)]
    assert not any(matches(s, pod["metadata"]["labels"]) for s in members)
    assert not matches(selector, statefulset["spec"]["template"]["metadata"]["labels"])
    assert found["RoleBinding"]["subjects"][0]["name"] == pod["spec"]["serviceAccountName"] == "db-guard"


def test_its_role_grants_what_the_failover_steps_do_on_its_site_and_nothing_more() -> None:
    rules = guard_objects(render(STANDBY))["Role"]["rules"]
    granted = {(resource, verb) for rule in rules for resource in rule["resources"] for verb in rule["verbs"]}
    assert all(rule["apiGroups"] == [""] for rule in rules)
    assert granted == {*(("configmaps", verb) for verb in ("create", "get", "list", "patch")),
                       ("pods", "get"), ("pods", "list"), ("events", "create")}
    without_rbac = values(STANDBY)
    without_rbac["rbac"] = {"create": False}
    found = guard_objects(chart.render_manifests(without_rbac, "db", NAMESPACE, CHART))
    assert "Role" not in found and "RoleBinding" not in found and "ServiceAccount" in found


def test_the_container_runs_rolegen_guard_for_its_site_on_a_writable_copy_of_the_specs() -> None:
    pod = guard_objects(render({**STANDBY, "port": 9099, "every": 0.5}))["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "registry.example/rolegen:0.1.0"
    assert [*container["command"], *container["args"]] == [
        "rolegen", "guard", "--env=site-a", "--dir=/var/lib/rolegen/environments",
        "--kubeconfig=/etc/rolegen/kubeconfig/kubeconfig", "--listen=0.0.0.0:9099", "--every=0.5"]
    assert container["ports"] == [{"name": "guard", "containerPort": 9099, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == container["livenessProbe"]["httpGet"] == {
        "path": "/healthz", "port": "guard"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # A failover records the roles in the specs it runs from: an emptyDir the init container fills from the
    # ConfigMap (a ConfigMap volume is read-only), never the ConfigMap itself.
    [init] = pod["initContainers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["environments"]["mountPath"] == "/var/lib/rolegen/environments"
    assert not mounts["environments"].get("readOnly")
    assert "specs" not in mounts
    assert {m["name"]: m["mountPath"] for m in init["volumeMounts"]} == {
        "specs": "/etc/rolegen/specs", "environments": "/var/lib/rolegen/environments"}
    assert init["command"][-2:] == ["/etc/rolegen/specs", "/var/lib/rolegen/environments"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["specs"]["configMap"] == {"name": "rolegen-environments"}  # names only, no content
    assert volumes["environments"] == {"name": "environments", "emptyDir": {}}
    assert volumes["kubeconfig"]["secret"]["secretName"] == "rolegen-guard-kubeconfig"


def test_the_init_containers_copy_takes_the_specs_and_leaves_the_configmaps_own_entries(tmp_path: Path) -> None:
    """The command the init container runs, on a directory laid out as the kubelet lays out a ConfigMap volume."""
    init = guard_objects(render(STANDBY))["Deployment"]["spec"]["template"]["spec"]["initContainers"][0]
    source, target = tmp_path / "specs", tmp_path / "environments"
    data = source / "..2026_12_02"
    data.mkdir(parents=True)
    target.mkdir()
    for name in ("a.yaml", "b.yaml"):
        (data / name).write_text(f"environment: {name[0]}\n")
    (source / "..data").symlink_to(data.name)
    for name in ("a.yaml", "b.yaml"):
        (source / name).symlink_to(f"..data/{name}")
    command = [sys.executable if init["command"][0] == "python3" else init["command"][0], *init["command"][1:-2],
               str(source), str(target)]
    subprocess.run(command, check=True)
    assert sorted(p.name for p in target.iterdir()) == ["a.yaml", "b.yaml"]
    assert not any(p.is_symlink() for p in target.iterdir())  # copies, writable
    assert (target / "a.yaml").read_text() == "environment: a\n"


def test_a_network_policy_admits_the_peer_on_the_guards_port_only_with_peer_cidrs() -> None:
    data = values(STANDBY)
    data["peer"]["cidrs"] = ["10.98.0.0/16"]
    policy = guard_objects(chart.render_manifests(data, "db", NAMESPACE, CHART))["NetworkPolicy"]
    assert policy["spec"]["ingress"] == [{"from": [{"ipBlock": {"cidr": "10.98.0.0/16"}}],
                                          "ports": [{"port": "guard", "protocol": "TCP"}]}]
    data["peer"]["cidrs"] = []
    assert "NetworkPolicy" not in guard_objects(chart.render_manifests(data, "db", NAMESPACE, CHART))
    data["peer"]["cidrs"], data["networkPolicy"] = ["10.98.0.0/16"], {"create": False}
    assert "NetworkPolicy" not in guard_objects(chart.render_manifests(data, "db", NAMESPACE, CHART))


@pytest.mark.parametrize("tsc_create", [True, False])
def test_where_the_cluster_hosts_the_claim_the_guards_port_gets_one_too(tsc_create: bool) -> None:
    data = values({**STANDBY, "port": 8100})
    data["tsc"]["create"] = tsc_create
    manifests = chart.render_manifests(data, "db", NAMESPACE, CHART)
    claims = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "TransportServerClaim"}
    if not tsc_create:
        assert claims == {}
        return
    assert sorted(claims) == ["db-guard", "db-master"]
    claim = claims["db-guard"]
    jsonschema.validate(claim, TSC_SCHEMA)
    assert claim["spec"] == {"service": "db-guard", "servicePort": 8100, "overrideServicePort": True,
                             "monitor": {"type": "tcp", **data["tsc"]["monitor"]}}
    assert chart.find(manifests, "Service", "db-guard")["spec"]["ports"][0]["port"] == 8100
    data["witnessGuard"]["standby"]["enabled"] = False  # no guard here: no claim for its port
    assert [m["metadata"]["name"] for m in chart.render_manifests(data, "db", NAMESPACE, CHART)
            if m["kind"] == "TransportServerClaim"] == ["db-master"]


def test_helm_lint_strict_is_clean_with_the_standby_guard() -> None:
    data = values(STANDBY)
    data["tsc"]["create"] = True
    findings = chart.lint(data, CHART, namespace=NAMESPACE, strict=True)
    assert [str(m) for m in findings if m.severity >= 2] == []


def test_the_guard_needs_automatic_mode_and_its_site() -> None:
    with pytest.raises(RolegenError) as caught:
        render(STANDBY, mode="manual")
    assert ("witnessGuard.standby.enabled: needs witnessGuard.mode automatic (rolegen guard runs only for an "
            "automatic witness)") in caught.value.message
    with pytest.raises(RolegenError) as caught:
        render(STANDBY, site="")
    assert "witnessGuard.site: required with witnessGuard.mode automatic" in caught.value.message


@pytest.mark.parametrize(("standby", "named"), [
    ({"enabled": "yes"}, "at '/witnessGuard/standby/enabled': got string, want boolean"),
    ({**STANDBY, "port": "guard"}, "at '/witnessGuard/standby/port': got string, want integer"),
    ({**STANDBY, "every": 0}, "at '/witnessGuard/standby/every'"),
    ({**STANDBY, "kubeconfigSecret": ""}, "at '/witnessGuard/standby/kubeconfigSecret'"),
    ({**STANDBY, "environmentsConfigMap": "Not_A_Name"}, "at '/witnessGuard/standby/environmentsConfigMap'"),
    ({"enabled": True}, "at '/witnessGuard/standby/image/repository'"),
    ({**STANDBY, "replicas": 2}, "additional properties 'replicas' not allowed"),
], ids=["enabled-yes", "port-string", "every-0", "no-kubeconfig", "bad-configmap", "no-image", "unknown-key"])
def test_bad_standby_guard_values_are_refused_by_the_schema(standby: dict[str, Any], named: str) -> None:
    with pytest.raises(RolegenError) as caught:
        render(standby)
    assert "chart values rejected" in caught.value.message and named in caught.value.message


def test_rolegen_validate_refuses_a_bad_type_by_its_path() -> None:
    data = values({**STANDBY, "port": "guard"})
    assert [p.path for p in schema_problems(data, "values", "values.yaml")] == ["$.witnessGuard.standby.port"]

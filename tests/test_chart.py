"""chart/ rendered, linted and schema-checked by real Helm (the embedded helm-python-sdk, no helm binary)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from tests import helm_chart as chart
from tests.helpers import spec_data

from rolegen.errors import RolegenError
from rolegen.offline.render import configmap_patches, helm_values
from rolegen.offline.spec import Spec
from rolegen.offline.validate import schema_problems
from rolegen.package_data import schema_path

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "chart"
GENERATED = REPO / "environments" / "generated"
ENVS = sorted(p.parent.name for p in GENERATED.glob("*/values.yaml"))
ROLES = ("leader", "standby-leader")
OTHER_ROLE = {"leader": "standby-leader", "standby-leader": "leader"}
KUBE_VERSION = "1.30.0"  # OpenShift 4.17; the chart declares kubeVersion >=1.25
TSC_SCHEMA = json.loads((REPO / "tests" / "chart" / "transportserverclaim.schema.json").read_text())
NAMESPACE = "ns-under-test"


def generated_values(env: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((GENERATED / env / "values.yaml").read_text())
    return data


def values_in_role(env: str, role: str) -> dict[str, Any]:
    """The committed values of `env` with only the role set to `role` (a copy)."""
    values = copy.deepcopy(generated_values(env))
    values["role"] = role
    return values


def release(env: str) -> str:
    release_name: str = spec_data(env)["helm"]["release"]
    return release_name


def render(env: str, role: str) -> list[dict[str, Any]]:
    return chart.render_manifests(values_in_role(env, role), release(env), NAMESPACE, CHART)


def spec_in_role(env: str, role: str) -> Spec:
    data = spec_data(env)
    data["role"] = role
    return Spec.from_dict(data)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(data, list) and data:
        out = {}
        for i, value in enumerate(data):
            out.update(flatten(value, f"{prefix}[{i}]"))
        return out
    return {prefix: data}


def by_identity(manifests: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    objects = {(m["kind"], m["metadata"]["name"]): m for m in manifests}
    assert len(objects) == len(manifests), "two rendered objects share kind and name"
    return objects


def config_annotation(manifests: list[dict[str, Any]]) -> str:
    annotation: str = chart.dcs_config_map(manifests)["metadata"]["annotations"]["config"]
    return annotation


def test_committed_environments_exist() -> None:
    assert ENVS, "no environments/generated/*/values.yaml to render"
    assert {generated_values(env)["role"] for env in ENVS} == set(ROLES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("env", ENVS)
def test_role_decides_standby_cluster_in_config_annotation(env: str, role: str) -> None:
    values = values_in_role(env, role)
    manifests = render(env, role)
    config = json.loads(config_annotation(manifests))
    if role == "standby-leader":
        assert config["standby_cluster"] == {
            **values["patroni"]["standby"],
            "host": values["peer"]["host"],
            "port": values["peer"]["port"],
        }
    else:
        assert "standby_cluster" not in config
    assert {k: v for k, v in config.items() if k != "standby_cluster"} == values["patroni"]["dynamic"]


@pytest.mark.parametrize("env", ENVS)
def test_roles_differ_only_in_the_config_annotation(env: str) -> None:
    leader = by_identity(render(env, "leader"))
    standby = by_identity(render(env, "standby-leader"))
    assert leader.keys() == standby.keys()
    differences = set()
    for identity in leader:
        flat_leader, flat_standby = flatten(leader[identity]), flatten(standby[identity])
        for path in flat_leader.keys() | flat_standby.keys():
            if flat_leader.get(path, "<absent>") != flat_standby.get(path, "<absent>"):
                differences.add((*identity, path))
    scope = generated_values(env)["patroni"]["scope"]
    # Nothing else changes: no Pod template change, so a role change never restarts a member.
    assert differences == {("ConfigMap", f"{scope}-config", "metadata.annotations.config")}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("env", ENVS)
def test_config_annotation_is_byte_identical_to_rolegen_patch(env: str, role: str) -> None:
    spec = spec_in_role(env, role)
    expected = configmap_patches(spec)[spec.config_map]["metadata"]["annotations"]["config"]
    assert config_annotation(render(env, role)) == expected
    if role == generated_values(env)["role"]:
        committed = yaml.safe_load((GENERATED / env / "patches" / f"{spec.config_map}.yaml").read_text())
        assert config_annotation(render(env, role)) == committed["metadata"]["annotations"]["config"]


def test_config_annotation_stays_byte_identical_with_awkward_values() -> None:
    """Helm's toJson escapes <, > and & (as \\u003c...); the chart uses toRawJson, like rolegen's dumps_json."""
    data = spec_data("golddr")
    data["role"] = "standby-leader"
    data["patroni"]["standby"] = {
        "restore_command": "test -f /archive/%f && cp /archive/%f %p 2>/dev/null",
        "archive_cleanup_command": "pg_archivecleanup /archive %r > /dev/null < /dev/null",
        "recovery_min_apply_delay": "5min",
        "primary_slot_name": "sité_b",
    }
    data["patroni"]["dynamic"]["postgresql"]["parameters"]["checkpoint_completion_target"] = 0.9
    data["patroni"]["dynamic"]["master_start_timeout"] = 300
    spec = Spec.from_dict(data)
    manifests = chart.render_manifests(helm_values(spec), spec.release, NAMESPACE, CHART)
    expected = configmap_patches(spec)[spec.config_map]["metadata"]["annotations"]["config"]
    assert config_annotation(manifests) == expected


@pytest.mark.parametrize(
    "values_file",
    [*(GENERATED / env / "values.yaml" for env in ENVS), *sorted((CHART / "ci").glob("*.yaml"))],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_helm_lint_strict_is_clean(values_file: Path) -> None:
    values = yaml.safe_load(values_file.read_text())
    findings = chart.lint(values, CHART, namespace=NAMESPACE, strict=True)
    # Only INFO remains ("icon is recommended"): no warning, no error.
    assert [str(m) for m in findings if m.severity >= 2] == []


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("env", ENVS)
def test_manifests_validate_against_kubernetes_schemas(env: str, role: str) -> None:
    manifests = render(env, role)
    kinds = set()
    for manifest in manifests:
        kinds.add(manifest["kind"])
        if manifest["kind"] == "TransportServerClaim":
            # No published CRD: validated against the documented shape (tests/chart/...schema.json).
            jsonschema.Draft202012Validator(TSC_SCHEMA).validate(manifest)
        else:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
    assert kinds >= {
        "ConfigMap",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "StatefulSet",
    }


def test_chart_names_no_site() -> None:
    sites = {"gold"} | {env.lower() for env in ENVS}
    offenders = []
    for path in sorted(CHART.rglob("*")):
        relative = path.relative_to(CHART).as_posix().lower()
        text = path.read_text(encoding="utf-8").lower() if path.is_file() else ""
        offenders += [f"{relative}: {site}" for site in sorted(sites) if site in relative or site in text]
    assert offenders == []


def test_rolegen_validates_values_with_the_schema_helm_enforces() -> None:
    """One values schema, the chart's: what Helm refuses at install, `rolegen validate` refuses before it."""
    values = generated_values(ENVS[0])
    values["role"] = "master"
    found = [str(p) for p in schema_problems(values, "values", "values.yaml")]
    assert found == ["values.yaml::$.role: 'master' is not one of ['leader', 'standby-leader']"]
    # From a source tree, the chart's own file; from a wheel (CI installs one), its copy of the chart's bytes.
    assert schema_path("values").read_bytes() == (CHART / "values.schema.json").read_bytes()
    assert schema_path("values").parent.name == "chart"
    assert [p.relative_to(REPO).as_posix() for p in REPO.glob("*/values.schema.json")] == ["chart/values.schema.json"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"role": "master"}, "at '/role': value must be one of 'leader', 'standby-leader'"),
        ({"peer": {"port": "abc"}}, "at '/peer/port': got string, want integer"),
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
        ({"persistence": {"size": "1i"}}, "at '/persistence/size'"),
        ({"patroni": {"drSlot": "gold; DROP"}}, "at '/patroni/drSlot'"),  # it reaches a command line and SQL
    ],
    ids=["role-master", "port-abc", "unknown-key", "size-1i", "dr-slot-name"],
)
def test_bad_values_are_refused_by_helm_schema_validation(change: dict[str, Any], named: str) -> None:
    values = generated_values(ENVS[0])
    for key, value in change.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) and key in values else value
    with pytest.raises(RolegenError) as caught:
        chart.render_manifests(values, "db", NAMESPACE, CHART)
    assert "chart values rejected" in caught.value.message
    assert named in caught.value.message


def test_helm_lint_reports_bad_values_as_errors() -> None:
    values = generated_values(ENVS[0])
    values["role"] = "master"
    errors = [str(m) for m in chart.lint(values, CHART, namespace=NAMESPACE) if m.severity == 3]
    assert errors
    assert all("at '/role': value must be one of 'leader', 'standby-leader'" in e for e in errors)


def test_standby_without_peer_is_refused_naming_the_peer() -> None:
    values = values_in_role(ENVS[0], "standby-leader")
    del values["peer"]
    with pytest.raises(RolegenError) as caught:
        chart.render_manifests(values, "db", NAMESPACE, CHART)
    assert "at '/peer': missing properties 'host', 'port'" in caught.value.message


def test_missing_role_is_refused_rather_than_defaulted() -> None:
    values = generated_values(ENVS[0])
    del values["role"]
    with pytest.raises(RolegenError, match="missing property 'role'"):
        chart.render_manifests(values, "db", NAMESPACE, CHART)


def test_patroni_labels_may_not_take_reserved_keys() -> None:
    values = generated_values(ENVS[0])
    values["patroni"]["labels"] = {"application": "db", "role": "x", "cluster-name": "y"}
    with pytest.raises(RolegenError) as caught:
        chart.render_manifests(values, "db", NAMESPACE, CHART)
    assert "patroni.labels.role: reserved" in caught.value.message
    assert "patroni.labels.cluster-name: reserved" in caught.value.message


def test_every_default_value_is_documented() -> None:
    """helm-docs style: each leaf value (or the object it belongs to) has a `# --` comment right above it."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing mappings
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped.startswith(("#", "- ")):
            continue
        indent = len(line) - len(stripped)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        comments = []
        j = i - 1
        while j >= 0 and lines[j].lstrip().startswith("#"):
            comments.append(lines[j].lstrip())
            j -= 1
        documented = any(c.startswith("# --") for c in comments) or any(doc for _, doc in stack)
        key, _, rest = stripped.partition(":")
        if rest.strip():
            if not documented:
                undocumented.append(f"line {i + 1}: {key}")
        else:
            stack.append((indent, documented))
    assert undocumented == []


def test_validate_values_reports_every_problem_at_once() -> None:
    values = values_in_role(ENVS[0], "standby-leader")
    values["auth"] = {"app": {"existingSecret": "x"}}
    values["peer"]["host"] = "db-master"  # this release's own leader Service
    with pytest.raises(RolegenError) as caught:
        chart.render_manifests(values, "db", NAMESPACE, CHART)
    message = caught.value.message
    for expected in (
        "auth.superuser.existingSecret: required",
        "auth.replication.existingSecret: required",
        "auth.rewind.existingSecret: required",
        'peer.host: "db-master" is this release\'s own leader Service',
    ):
        assert expected in message


@pytest.mark.parametrize("env", ENVS)
def test_patroni_configuration_is_extractable(env: str) -> None:
    values = generated_values(env)
    manifests = render(env, values["role"])
    static, dynamic = chart.patroni_config(manifests)
    spec = spec_in_role(env, values["role"])
    assert dynamic == json.loads(configmap_patches(spec)[spec.config_map]["metadata"]["annotations"]["config"])
    assert static["scope"] == values["patroni"]["scope"]
    assert static["kubernetes"] == {
        "namespace": NAMESPACE,
        "labels": values["patroni"]["labels"],
        "scope_label": "cluster-name",
        "role_label": "role",
        "leader_label_value": values["patroni"]["leaderLabelValue"],
        "standby_leader_label_value": values["patroni"]["leaderLabelValue"],
        "follower_label_value": "replica",
        "use_endpoints": False,
    }
    assert "data-checksums" in static["bootstrap"]["initdb"]
    assert static["bootstrap"]["dcs"] == values["patroni"]["dynamic"]  # role-free: the role is in the DCS only
    assert static["postgresql"]["use_pg_rewind"] is True
    for cidr in values["peer"]["cidrs"]:
        # The bundled specs use TLS: the peer over TLS only (pg_rewind connects to `postgres`).
        assert f"hostssl replication all {cidr} scram-sha-256" in static["postgresql"]["pg_hba"]
        assert f"hostssl postgres all {cidr} scram-sha-256" in static["postgresql"]["pg_hba"]
    env_names = {e["name"] for e in chart.member_env(manifests)}
    assert {"PATRONI_REWIND_USERNAME", "PATRONI_REWIND_PASSWORD", "PATRONI_NAME", "PATRONI_KUBERNETES_POD_IP"} <= (
        env_names
    )
    # Patroni's hooks (the DR slot's) get the superuser under a name Patroni does not remove, from the Secret.
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in chart.member_env(manifests) if "valueFrom" in e
            and "secretKeyRef" in e["valueFrom"]}
    assert refs["ROLEGEN_SUPERUSER_PASSWORD"] == {"name": values["auth"]["superuser"]["existingSecret"],
                                                  "key": "password"}
    assert set(chart.static_files(manifests)) == {"patroni.yml", "post-bootstrap.sh", "startup-guard.py",
                                                  "dr_slot.py", "member_sql.py", "member_figures.py",
                                                  "member_control.py"}
    # The DR slot each site keeps while it leads: its WAL from before a divergence goes after a promotion.
    slot = "golddr" if env == "gold" else "gold"
    assert static["postgresql"]["callbacks"] == {
        "on_role_change": f"python3 /etc/patroni/dr_slot.py /etc/patroni/patroni.yml {slot}"}
    # pre_promote tells a promotion from standby cluster (replaying from the peer) from one inside a site.
    peer = f"{values['peer']['host']}:{values['peer']['port']}"
    assert static["postgresql"]["pre_promote"] == (f"python3 /etc/patroni/dr_slot.py --pre-promote "
                                                   f"/etc/patroni/patroni.yml {slot} {peer}")


def test_without_a_dr_slot_to_release_patroni_runs_no_callback() -> None:
    values = generated_values(ENVS[0])
    del values["patroni"]["drSlot"]
    manifests = chart.render_manifests(values, release(ENVS[0]), NAMESPACE, CHART)
    static, _dynamic = chart.patroni_config(manifests)
    assert "callbacks" not in static["postgresql"] and "pre_promote" not in static["postgresql"]
    assert "dr_slot.py" not in chart.static_files(manifests)
    # A leader installed without a peer has no standby cluster to tell apart: no hooks either.
    values = {**generated_values("gold"), "peer": {"cidrs": []}}
    manifests = chart.render_manifests(values, release("gold"), NAMESPACE, CHART)
    assert "callbacks" not in chart.patroni_config(manifests)[0]["postgresql"]
    assert not any(e["name"].startswith("ROLEGEN_SUPERUSER") for e in chart.member_env(manifests))


def test_members_publish_their_storage_figures_unless_turned_off() -> None:
    """The startup guard forks the publisher (files/member_figures.py) every figuresEvery seconds; 0 leaves
    neither the script nor its setting in the Pods."""
    values = generated_values(ENVS[0])
    manifests = chart.render_manifests(values, release(ENVS[0]), NAMESPACE, CHART)
    env = {e["name"]: e.get("value") for e in chart.member_env(manifests)}
    assert env["ROLEGEN_FIGURES_EVERY"] == "15"
    assert {"member_figures.py", "member_sql.py"} <= set(chart.static_files(manifests))
    values["startupGuard"] = {**values.get("startupGuard", {}), "figuresEvery": 0}
    manifests = chart.render_manifests(values, release(ENVS[0]), NAMESPACE, CHART)
    assert "ROLEGEN_FIGURES_EVERY" not in {e["name"] for e in chart.member_env(manifests)}
    assert "member_figures.py" not in chart.static_files(manifests)


def test_members_report_their_pg_control_unless_turned_off() -> None:
    """By default the guard forks the pg_control watcher (files/member_control.py) that lets a switchover promote
    as soon as the old primary shut down; shutdownReport false leaves neither the script nor its setting."""
    values = generated_values(ENVS[0])
    manifests = chart.render_manifests(values, release(ENVS[0]), NAMESPACE, CHART)
    env = {e["name"]: e.get("value") for e in chart.member_env(manifests)}
    assert env["ROLEGEN_CONTROL_REPORT"] == "1"
    assert "member_control.py" in chart.static_files(manifests)
    values["startupGuard"] = {**values.get("startupGuard", {}), "shutdownReport": False}
    manifests = chart.render_manifests(values, release(ENVS[0]), NAMESPACE, CHART)
    assert "ROLEGEN_CONTROL_REPORT" not in {e["name"] for e in chart.member_env(manifests)}
    assert "member_control.py" not in chart.static_files(manifests)


@pytest.mark.parametrize("env", ENVS)
def test_dcs_objects_carry_exactly_patronis_selector_labels(env: str) -> None:
    values = generated_values(env)
    manifests = render(env, values["role"])
    selector = {**values["patroni"]["labels"], "cluster-name": values["patroni"]["scope"]}
    config_map = chart.dcs_config_map(manifests)
    assert config_map["metadata"]["name"] == f"{values['patroni']['scope']}-config"
    assert config_map["metadata"]["labels"] == selector
    pod_labels = chart.find(manifests, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()  # Patroni lists its member Pods by the same selector
    # Only the chart's `config` is rendered: Patroni's initialize/history are never in a manifest, so Helm's
    # three-way merge keeps them on upgrade; resource-policy keep protects them on uninstall.
    assert set(config_map["metadata"]["annotations"]) == {"config", "helm.sh/resource-policy"}


@pytest.mark.parametrize("env", ENVS)
def test_services_select_by_patronis_role_label(env: str) -> None:
    values = generated_values(env)
    name = release(env)
    manifests = render(env, values["role"])
    master = chart.find(manifests, "Service", f"{name}-master")
    assert master["spec"]["selector"]["role"] == values["patroni"]["leaderLabelValue"]
    assert chart.find(manifests, "Service", f"{name}-replicas")["spec"]["selector"]["role"] == "replica"
    headless = chart.find(manifests, "Service", f"{name}-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert chart.find(manifests, "StatefulSet")["spec"]["serviceName"] == headless["metadata"]["name"]


def test_leader_label_value_master_for_older_images() -> None:
    values = generated_values(ENVS[0])
    values["patroni"]["leaderLabelValue"] = "master"
    manifests = chart.render_manifests(values, "db", NAMESPACE, CHART)
    assert chart.find(manifests, "Service", "db-master")["spec"]["selector"]["role"] == "master"
    static, _ = chart.patroni_config(manifests)
    assert static["kubernetes"]["leader_label_value"] == "master"


def test_rbac_grants_exactly_patronis_configmap_mode_verbs() -> None:
    manifests = render(ENVS[0], "leader")
    rules = chart.find(manifests, "Role")["rules"]
    granted = {(resource, verb) for rule in rules for resource in rule["resources"] for verb in rule["verbs"]}
    assert all(rule["apiGroups"] == [""] for rule in rules)
    assert granted == {
        *(("configmaps", verb) for verb in ("create", "get", "list", "patch", "watch")),
        *(("pods", verb) for verb in ("list", "patch", "watch")),
    }
    binding = chart.find(manifests, "RoleBinding")
    account = chart.find(manifests, "ServiceAccount")
    assert binding["subjects"][0]["name"] == account["metadata"]["name"]
    pod_spec = chart.find(manifests, "StatefulSet")["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == account["metadata"]["name"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("tsc_create", [True, False])
def test_transport_server_claim_follows_the_cluster_fact_not_the_role(tsc_create: bool, role: str) -> None:
    values = values_in_role(ENVS[0], role)
    values["tsc"]["create"] = tsc_create
    manifests = chart.render_manifests(values, "db", NAMESPACE, CHART)
    claims = [m for m in manifests if m["kind"] == "TransportServerClaim"]
    if not tsc_create:
        assert claims == []
        return
    (claim,) = claims
    assert claim["apiVersion"] == "porter.devops.gov.bc.ca/v1alpha1"
    master = chart.find(manifests, "Service", "db-master")
    assert claim["spec"] == {
        "service": "db-master",
        "servicePort": master["spec"]["ports"][0]["port"],
        "overrideServicePort": True,
        "monitor": {"type": "tcp", **values["tsc"]["monitor"]},
    }


@pytest.mark.parametrize("env", ENVS)
def test_committed_tsc_placement(env: str) -> None:
    manifests = render(env, generated_values(env)["role"])
    has_claim = any(m["kind"] == "TransportServerClaim" for m in manifests)
    assert has_claim is generated_values(env)["tsc"]["create"]


@pytest.mark.parametrize("env", ENVS)
def test_secrets_are_only_referenced(env: str) -> None:
    values = generated_values(env)
    manifests = render(env, values["role"])
    assert [m for m in manifests if m["kind"] == "Secret"] == []
    referenced = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in chart.member_env(manifests)
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert referenced == {a["existingSecret"] for a in values["auth"].values()}
    literal = {e["name"] for e in chart.member_env(manifests) if "value" in e}
    assert not any("PASSWORD" in name for name in literal)


@pytest.mark.parametrize("env", ENVS)
def test_one_pvc_per_member_from_volume_claim_templates_only(env: str) -> None:
    values = generated_values(env)
    manifests = render(env, values["role"])
    assert [m for m in manifests if m["kind"] == "PersistentVolumeClaim"] == []
    statefulset = chart.find(manifests, "StatefulSet")
    assert statefulset["spec"]["replicas"] == values["replicaCount"]
    (template,) = statefulset["spec"]["volumeClaimTemplates"]
    assert template["spec"]["resources"]["requests"]["storage"] == values["persistence"]["size"]
    assert template["spec"]["storageClassName"] == values["persistence"]["storageClass"]
    volumes = statefulset["spec"]["template"]["spec"]["volumes"]
    assert not any("persistentVolumeClaim" in v for v in volumes)


@pytest.mark.parametrize("env", ENVS)
def test_network_policy_admits_members_and_peer_on_postgresql(env: str) -> None:
    values = generated_values(env)
    manifests = render(env, values["role"])
    policy = chart.find(manifests, "NetworkPolicy")
    rules = policy["spec"]["ingress"]
    peer_rules = [r for r in rules if any("ipBlock" in f for f in r["from"])]
    assert [f["ipBlock"]["cidr"] for r in peer_rules for f in r["from"]] == values["peer"]["cidrs"]
    assert all(r["ports"] == [{"port": "postgresql", "protocol": "TCP"}] for r in peer_rules)
    members = [r for r in rules if any("podSelector" in f for f in r["from"])]
    assert members and members[0]["from"][0]["podSelector"] == policy["spec"]["podSelector"]


def test_helm_errors_become_rolegen_errors_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(RolegenError) as caught:
        chart.render_manifests(generated_values(ENVS[0]), "db", NAMESPACE, tmp_path / "no-chart")
    assert "cannot load the chart" in caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize("env", ["gold", "golddr"])
def test_startup_guard_runs_before_patroni_and_knows_the_peer(env: str) -> None:
    manifests = chart.render_manifests(generated_values(env), release(env), "ns")
    container = chart.find(manifests, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python3", "/etc/patroni/startup-guard.py", "patroni", "/etc/patroni/patroni.yml"]
    env_vars = {e["name"]: e.get("value") for e in container["env"]}
    peer = generated_values(env)["peer"]
    assert env_vars["GUARD_PEER_HOST"] == peer["host"]
    assert env_vars["GUARD_PEER_PORT"] == str(peer["port"])
    # The spec's choice (here its default: wait on the site that hosts the tunnel, start on the other).
    assert env_vars["GUARD_PEER_UNREACHABLE"] == ("wait" if spec_data(env)["tsc"]["create"] else "start")
    assert env_vars["GUARD_UNREACHABLE_GRACE"] == "300"
    # A fence it writes names the DR slot this site streams through, as the rendered standby config does.
    assert json.loads(env_vars["GUARD_STANDBY_EXTRAS"]) == generated_values(env)["patroni"]["standby"]
    assert json.loads(env_vars["GUARD_STANDBY_EXTRAS"])["primary_slot_name"] == env
    guard = chart.static_files(manifests)["startup-guard.py"]
    assert guard.rstrip("\n") == (REPO / "chart/files/startup-guard.py").read_text().rstrip("\n")


@pytest.mark.parametrize(("policy", "grace"), [("start", 30), ("wait", 900), ("start", 0)])
def test_a_specs_startup_guard_reaches_the_container_and_outlives_its_grace(policy: str, grace: int) -> None:
    data = spec_data("gold")
    data["startup_guard"] = {"peer_unreachable": policy, "unreachable_grace": grace}
    manifests = chart.render_manifests(helm_values(Spec.from_dict(data)), release("gold"), "ns")
    container = chart.find(manifests, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    env_vars = {e["name"]: e.get("value") for e in container["env"]}
    assert (env_vars["GUARD_PEER_UNREACHABLE"], env_vars["GUARD_UNREACHABLE_GRACE"]) == (policy, str(grace))
    # Liveness must not kill the guard while it asks the peer for the grace, which would start the grace over:
    # the startupProbe holds liveness off for the grace plus two minutes for Patroni to come up.
    probe = container["startupProbe"]
    assert probe["httpGet"]["path"] == "/liveness"
    assert probe["periodSeconds"] * probe["failureThreshold"] >= grace + 120


def test_startup_guard_can_be_disabled() -> None:
    values = {**generated_values("gold"), "startupGuard": {"enabled": False}}
    manifests = chart.render_manifests(values, "patroni", "ns")
    container = chart.find(manifests, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["patroni", "/etc/patroni/patroni.yml"]
    assert "startup-guard.py" not in chart.static_files(manifests)
    assert not any(e["name"].startswith("GUARD_") for e in container["env"])
    assert "startupProbe" not in container

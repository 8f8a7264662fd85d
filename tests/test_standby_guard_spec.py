"""`witness.guard:` in a spec: this site's `rolegen guard` as the chart's Deployment. Optional (without it nothing
rendered changes); with mode automatic `rolegen render` writes the chart's `witnessGuard.standby`, which Helm turns
into the guard for this site; every mistake named as `file::$.path: message`."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests import helm_chart as chart
from tests.helpers import spec_data, write_spec
from typer.testing import CliRunner

from rolegen.cli import app

runner = CliRunner()
GUARD: dict[str, Any] = {"image": {"repository": "registry.example/rolegen", "tag": "0.1.0"},
                         "environments_config_map": "rolegen-environments",
                         "kubeconfig_secret": "rolegen-guard-kubeconfig"}
AUTOMATIC: dict[str, Any] = {"kubernetes": {"context": "witness", "namespace": "rolegen-witness"},
                             "lease": "patroni-pair", "mode": "automatic", "secret": "patroni-witness",
                             "lag_limit": {"bytes": 16 << 20}}
PEER_GUARD = {"gold": "patroni-guard-golddr", "golddr": "patroni-guard-gold"}


def declare(workdir: Path, guards: dict[str, dict[str, Any] | None], **witness: Any) -> None:
    """The bundled pair in automatic mode, each site asking its peer's guard on 8099, with `guards[env]` as its
    `witness.guard` (None: none)."""
    for env in ("gold", "golddr"):
        data = spec_data(env)
        data["witness"] = {**copy.deepcopy(AUTOMATIC), "peer_guard": {"host": PEER_GUARD[env], "port": 8099},
                           **witness}
        if guards.get(env) is not None:
            data["witness"]["guard"] = copy.deepcopy(guards[env])
        write_spec(workdir / "environments", data)


def rendered(workdir: Path, env: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((workdir / "environments" / "generated" / env / "values.yaml").read_text())
    return values


def validate() -> tuple[int, list[str]]:
    result = runner.invoke(app, ["validate"])
    return result.exit_code, [line for line in result.stderr.splitlines() if "environments/" in line]


def test_render_writes_the_guard_of_each_site_and_helm_runs_it_for_that_site(workdir: Path) -> None:
    declare(workdir, {"gold": {**GUARD, "port": 8100, "image": {**GUARD["image"], "pull_policy": "Always"}},
                      "golddr": GUARD})
    # Each site's peer asks it on its own port.
    for env, port in (("gold", 8099), ("golddr", 8100)):
        data = yaml.safe_load((workdir / "environments" / f"{env}.yaml").read_text())
        data["witness"]["peer_guard"]["port"] = port
        write_spec(workdir / "environments", data)
    result = runner.invoke(app, ["render", "--all"])
    assert result.exit_code == 0, result.output
    assert rendered(workdir, "gold")["witnessGuard"]["standby"] == {
        "enabled": True, "image": {"repository": "registry.example/rolegen", "tag": "0.1.0", "pullPolicy": "Always"},
        "environmentsConfigMap": "rolegen-environments", "kubeconfigSecret": "rolegen-guard-kubeconfig", "port": 8100}
    assert rendered(workdir, "golddr")["witnessGuard"]["standby"]["port"] == 8099  # the default
    assert "pullPolicy" not in rendered(workdir, "golddr")["witnessGuard"]["standby"]["image"]  # the chart's
    for env, port in (("gold", 8100), ("golddr", 8099)):
        manifests = chart.render_manifests(rendered(workdir, env), "patroni", "ns")
        pod = chart.find(manifests, "Deployment", "patroni-guard")["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        assert f"--env={env}" in args and f"--listen=0.0.0.0:{port}" in args
        assert chart.find(manifests, "Service", "patroni-guard")["spec"]["ports"][0]["port"] == port
        # gold hosts the claim: its guard's port goes through the tunnel with the database's.
        claims = sorted(m["metadata"]["name"] for m in manifests if m["kind"] == "TransportServerClaim")
        assert claims == (["patroni-guard", "patroni-master"] if env == "gold" else [])
    assert runner.invoke(app, ["validate"]).exit_code == 0


def test_without_a_guard_block_nothing_of_the_guard_is_rendered(workdir: Path) -> None:
    declare(workdir, {})
    assert runner.invoke(app, ["render", "--all"]).exit_code == 0
    for env in ("gold", "golddr"):
        assert "standby" not in rendered(workdir, env)["witnessGuard"]
        manifests = chart.render_manifests(rendered(workdir, env), "patroni", "ns")
        assert not [m for m in manifests if m["metadata"]["name"] == "patroni-guard"]


def test_a_guard_in_manual_mode_is_refused_at_its_path(workdir: Path) -> None:
    declare(workdir, {"gold": GUARD}, mode="manual")
    code, lines = validate()
    assert code == 1
    assert [line for line in lines if not line.startswith("warning")] == [
        "environments/gold.yaml::$.witness.guard: needs mode automatic: `rolegen guard` runs only for an automatic "
        "witness, so nothing would be deployed; set witness.mode: automatic, or remove witness.guard"]


def test_a_peer_asked_on_another_port_than_its_guard_listens_on_is_a_warning(workdir: Path) -> None:
    declare(workdir, {"gold": GUARD, "golddr": {**GUARD, "port": 9000}})
    code, lines = validate()
    assert code == 0
    assert ("warning: environments/gold.yaml::$.witness.peer_guard.port: peer_guard.port 8099, but golddr's guard "
            "listens on 9000 (its witness.guard.port) and the TransportServerClaim keeps the port: promises would "
            "reach nothing") in lines
    assert not any("golddr.yaml::$.witness.peer_guard.port" in line for line in lines)


@pytest.mark.parametrize(("change", "expected"), [
    ({"port": 0}, "$.witness.guard.port: 0 is less than the minimum of 1"),
    ({"port": "8099"}, "$.witness.guard.port: '8099' is not of type 'integer'"),
    ({"image": {"repository": "r"}}, "$.witness.guard.image: 'tag' is a required property"),
    ({"image": {**GUARD["image"], "pull_policy": "Sometimes"}},
     "$.witness.guard.image.pull_policy: 'Sometimes' is not one of ['Always', 'IfNotPresent', 'Never']"),
    ({"kubeconfig_secret": "Guard_Kubeconfig"}, "$.witness.guard.kubeconfig_secret: 'Guard_Kubeconfig' does not match"),
    ({"environments_config_map": None}, "$.witness.guard.environments_config_map: None is not of type 'string'"),
    ({"replicas": 2}, "$.witness.guard: Additional properties are not allowed ('replicas' was unexpected)"),
], ids=["port-0", "port-string", "no-tag", "pull-policy", "secret-name", "configmap-null", "unknown-key"])
def test_a_bad_field_is_named_by_file_and_path(workdir: Path, change: dict[str, Any], expected: str) -> None:
    declare(workdir, {"gold": {**GUARD, **change}})
    code, lines = validate()
    assert code == 1
    assert any(line.startswith(f"environments/gold.yaml::{expected}") for line in lines), lines


def test_a_missing_required_name_is_named(workdir: Path) -> None:
    declare(workdir, {"gold": {k: v for k, v in GUARD.items() if k != "kubeconfig_secret"}})
    code, lines = validate()
    assert code == 1
    assert "environments/gold.yaml::$.witness.guard: 'kubeconfig_secret' is a required property" in lines

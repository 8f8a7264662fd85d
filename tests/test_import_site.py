"""`rolegen import` inference on fixtures of live objects (no cluster): the imported spec renders what is live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.commands.import_site import ImportOptions, LiveSite, infer_spec, render_spec
from rolegen.errors import RolegenError, UsageError
from rolegen.offline.render import configmap_patches, helm_values
from rolegen.offline.spec import Spec

REPO = Path(__file__).resolve().parent.parent


def _generated(env: str) -> tuple[dict[str, Any], dict[str, Any]]:
    gen = REPO / "environments" / "generated" / env
    values = yaml.safe_load((gen / "values.yaml").read_text())
    patch = yaml.safe_load((gen / "patches" / "patroni-config.yaml").read_text())
    return values, json.loads(patch["metadata"]["annotations"]["config"])


def _options(env: str, **kw: Any) -> ImportOptions:
    return ImportOptions(env=env, namespace="f088b1-prod", context=env, **kw)


@pytest.mark.parametrize("env", ["gold", "golddr"])
def test_import_of_a_rolegen_site_renders_the_committed_output(env: str) -> None:
    values, config = _generated(env)
    data, notes = infer_spec(LiveSite("patroni", values, config, scope="patroni"), _options(env))
    spec = Spec.from_dict(data)
    committed = Spec.from_dict(yaml.safe_load((REPO / "environments" / f"{env}.yaml").read_text()))
    assert helm_values(spec) == values
    assert configmap_patches(spec) == configmap_patches(committed)
    assert spec == committed  # every field, the peer's environment included (from <release>-master-<env>)
    assert notes == []


def test_hand_set_standby_cluster_decides_the_role_and_the_peer() -> None:
    """A plain Helm install: values say leader with no peer, standby_cluster was patched in by hand."""
    values, config = _generated("gold")
    del values["peer"]
    config["standby_cluster"] = {"host": "patroni-master-gold", "port": 53647, "primary_slot_name": "dr"}
    data, notes = infer_spec(LiveSite("patroni", values, config, scope="patroni"), _options("golddr"))
    assert data["role"] == "standby-leader"
    assert data["peer"] == {"environment": "gold", "host": "patroni-master-gold", "port": 53647}
    # the release values' patroni.standby wins (what the chart reads), not the hand-set primary_slot_name
    assert data["patroni"]["standby"] == values["patroni"]["standby"] != {"primary_slot_name": "dr"}
    assert any("$.role is leader, but Patroni runs as standby-leader" in n for n in notes)
    assert any(n.startswith("release value $.peer.cidrs") for n in notes) is False


def test_peer_from_the_tsc_port_and_the_peer_service() -> None:
    values, config = _generated("gold")
    del values["peer"]
    service = {"metadata": {"name": "patroni-master-golddr"}, "spec": {"ports": [{"port": 5432}]}}
    tsc = {"metadata": {"name": "patroni-master"}, "spec": {"servicePort": 5433}}
    data, _ = infer_spec(LiveSite("patroni", values, config, services=[service], tsc=tsc, scope="patroni"),
                         _options("gold"))
    assert data["peer"] == {"environment": "golddr", "host": "patroni-master-golddr", "port": 5433}


def test_peer_that_nothing_names_is_a_usage_error_naming_the_options() -> None:
    values, config = _generated("gold")
    del values["peer"]
    with pytest.raises(UsageError) as err:
        infer_spec(LiveSite("patroni", values, config, scope="patroni"), _options("gold"))
    assert "$.standby_cluster" in err.value.message and "$.peer.host" in err.value.message
    assert err.value.hint == "pass --peer-env ... --peer-host ... --peer-port ..."
    data, _ = infer_spec(LiveSite("patroni", values, config, scope="patroni"),
                         _options("gold", peer_env="dr", peer_host="pg-dr", peer_port=6000))
    assert data["peer"] == {"environment": "dr", "host": "pg-dr", "port": 6000}


def test_values_a_spec_cannot_express_are_notes() -> None:
    values, config = _generated("gold")
    values["service"] = {"port": 5433}
    _, notes = infer_spec(LiveSite("patroni", values, config, scope="patroni"), _options("gold"))
    assert notes == ["release value $.service.port = 5433 is not expressible in a spec (render gives absent): "
                     "rolegen diff will show it and apply would reset it"]


def test_the_live_startup_guard_policy_is_imported_not_reset() -> None:
    values, config = _generated("golddr")
    values["startupGuard"] = {"peerUnreachable": "wait", "unreachableGrace": 600}
    data, notes = infer_spec(LiveSite("patroni", values, config, scope="patroni"), _options("golddr"))
    assert data["startup_guard"] == {"peer_unreachable": "wait", "unreachable_grace": 600}
    assert helm_values(Spec.from_dict(data))["startupGuard"] == values["startupGuard"]
    assert notes == []


def test_a_release_without_a_startup_guard_value_runs_the_charts_default_and_the_spec_says_so() -> None:
    """golddr installed by plain Helm without `startupGuard`: it runs the chart's default (wait), not the spec's
    default for a site that does not host the tunnel (start); importing must not make apply change it."""
    values, config = _generated("golddr")
    del values["startupGuard"]
    data, _ = infer_spec(LiveSite("patroni", values, config, scope="patroni"), _options("golddr"))
    assert data["startup_guard"] == {"peer_unreachable": "wait"}
    assert helm_values(Spec.from_dict(data))["startupGuard"]["peerUnreachable"] == "wait"
    gold_values, gold_config = _generated("gold")  # the tunnel's host: the chart's default is its own default
    del gold_values["startupGuard"]
    gold, _ = infer_spec(LiveSite("patroni", gold_values, gold_config, scope="patroni"), _options("gold"))
    assert "startup_guard" not in gold


def test_only_the_config_annotation_gives_the_dynamic_config() -> None:
    _, config = _generated("golddr")
    config["standby_cluster"] = {"host": "patroni-master-gold", "port": 5432}
    data, _ = infer_spec(LiveSite("patroni", None, config, scope="patroni"), _options("golddr"))
    assert "standby_cluster" not in data["patroni"]["dynamic"]
    assert data["role"] == "standby-leader"
    assert "secrets" not in data  # the documented defaults apply


def test_nothing_live_is_an_error() -> None:
    with pytest.raises(RolegenError, match="no Helm release patroni and no ConfigMap patroni-config"):
        infer_spec(LiveSite("patroni", None, None, scope="patroni"), _options("gold"))


def test_spec_text_is_deterministic() -> None:
    values, config = _generated("gold")
    data, _ = infer_spec(LiveSite("patroni", values, config, scope="patroni"), _options("gold"))
    text = render_spec(data, _options("gold"))
    assert text == render_spec(data, _options("gold")) and text.endswith("\n")
    assert text.splitlines()[1] == "environment: gold"


def test_cli_refuses_to_overwrite_a_spec_without_force(workdir: Path) -> None:
    result = CliRunner().invoke(app, ["import", "--env", "gold", "--context", "gold", "--namespace", "x"])
    assert result.exit_code == 1
    assert "error: environments/gold.yaml exists" in result.output
    assert "hint: pass --force" in result.output


def test_a_value_left_to_the_chart_default_is_not_drift() -> None:
    from rolegen.cluster.site_diff import Difference, at_chart_default, difference_line

    same = at_chart_default(Difference("values", "$.tsc.create", "missing", None, False))
    assert same.drift is False
    assert difference_line(same) == "values   $.tsc.create: not set, declared false = the chart's default (no change)"
    assert at_chart_default(Difference("values", "$.replicaCount", "missing", None, 1)).drift is True  # default 2
    assert at_chart_default(Difference("values", "$.tsc", "missing", None, {"create": False})).drift is False
    assert at_chart_default(Difference("values", "$.tsc", "missing", None, {"create": True})).drift is True
    assert at_chart_default(Difference("values", "$.tsc.create", "changed", True, False)).drift is True


def test_peer_known_by_address_only_asks_for_its_environment_name() -> None:
    values, config = _generated("golddr")
    config["standby_cluster"] = {"host": "10.0.0.7", "port": 5432}
    values["peer"]["host"] = "10.0.0.7"
    with pytest.raises(UsageError) as err:
        infer_spec(LiveSite("patroni", values, config, scope="patroni"), _options("golddr"))
    assert err.value.message == ("cannot name the peer environment of golddr: its peer 10.0.0.7:5432 is not "
                                 "patroni-master-<env>")
    assert err.value.hint == "pass --peer-env NAME (the peer's spec name)"

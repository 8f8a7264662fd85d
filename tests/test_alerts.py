"""The pair's alerts (chart/files/rolegen-alerts.yaml): checked and unit-tested by the real promtool, every alert
covered firing and not firing, each naming the rolegen command that resolves it; rendered by the chart into a
PrometheusRule only when a spec asks for it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from tests import helm_chart as chart
from tests.helpers import spec_data

from rolegen.offline.render import helm_values
from rolegen.offline.spec import Spec
from rolegen.offline.validate import schema_problems

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "chart/files/rolegen-alerts.yaml"
UNIT_TESTS = REPO / "tests/prometheus/alerts_test.yaml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: apt-get install prometheus (.ci/run installs it)"
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False)


def alerts() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_the_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0 and f"SUCCESS: {len(alerts())} rules found" in checked.stdout, checked
    tested = promtool("test", "rules", str(UNIT_TESTS))
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_every_alert_is_tested_firing_and_not_firing_and_names_its_rolegen_command() -> None:
    cases = [case for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    names = {rule["alert"] for rule in alerts()}
    assert {c["alertname"] for c in cases if c["exp_alerts"]} == names
    assert {c["alertname"] for c in cases if not c["exp_alerts"]} == names
    for rule in alerts():
        assert "rolegen" in rule["annotations"]["runbook"], rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]


def test_a_spec_that_asks_gets_a_prometheus_rule_with_the_shipped_alerts() -> None:
    data = spec_data("gold")
    assert not any(m["kind"] == "PrometheusRule" for m in chart.render_manifests(
        helm_values(Spec.from_dict(data)), "patroni", "db"))  # opt-in: nothing without the spec's word
    data["monitoring"] = {"prometheus_rule": {"enabled": True, "labels": {"prometheus": "user-workload"}}}
    assert schema_problems(data, "environment", "environments/gold.yaml") == []
    manifests = chart.render_manifests(helm_values(Spec.from_dict(data)), "patroni", "db")
    rule = chart.find(manifests, "PrometheusRule")
    assert rule["metadata"]["labels"]["prometheus"] == "user-workload"
    assert rule["metadata"]["labels"]["app.kubernetes.io/component"] == "monitoring"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())  # the same rules promtool tested


def test_a_bad_monitoring_block_is_named_by_its_path() -> None:
    data = spec_data("gold")
    data["monitoring"] = {"prometheus_rule": {"enabled": "yes", "labels": {"team": 7}}}
    paths = sorted(p.path for p in schema_problems(data, "environment", "environments/gold.yaml"))
    assert paths == ["$.monitoring.prometheus_rule.enabled", "$.monitoring.prometheus_rule.labels.team"]

"""The Grafana dashboard shipped in the chart (chart/dashboards/rolegen-pair.json): valid JSON a Grafana imports
(unique panel ids, laid out on the grid, every query on the chosen Prometheus), each query naming only metrics
the exporter emits (its families as the code builds them, not a copied list), and every such metric on a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from tests.test_alerts import promtool

from rolegen.commands.exporter import Snapshot
from rolegen.commands.status import StatusResult, pair_metrics
from rolegen.offline.spec import Witness
from rolegen.witness.status import WitnessStatus

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "chart/dashboards/rolegen-pair.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# PromQL words that are not metric names: the functions and keywords the dashboard's queries use.
PROMQL = {"time", "rate", "sum", "max", "min", "count", "by", "without", "on", "ignoring", "group_left",
          "group_right", "bool", "and", "or", "unless", "offset"}


def emitted() -> set[str]:
    """Every metric family `rolegen exporter` serves: the pair's (with a witness), then its own."""
    witness = WitnessStatus(Witness.from_dict({"kubernetes": {"context": "w", "namespace": "w"}, "lease": "p"}),
                            ("gold", "golddr"), None, None, None, "not read")
    pair = pair_metrics(StatusResult([], None, witness))
    own = Snapshot(None, None, None, 0, 0, False, 15).self_families()
    return {family.name for family in [*pair, *own]}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def queries(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query."""
    return [(p["title"], t["expr"]) for p in data["panels"] for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label matchers, ranges,
    grouping clauses, Grafana's variables, numbers and PromQL's own words are taken out."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"\$\w+", " ", bare)
    return {word for word in re.findall(r"[A-Za-z_:][\w:]*", bare) if word not in PROMQL}


def test_metric_names_are_found_in_promql() -> None:
    assert metric_names('rolegen_site_role{source="live", role="leader"} == 1') == {"rolegen_site_role"}
    assert metric_names("time() - a_seconds{x=~\"$instance\"}") == {"a_seconds"}
    assert metric_names("sum by (site) (rate(b_total[$__rate_interval])) > on() group_left() c") == {"b_total", "c"}


def test_the_dashboard_is_valid_json_grafana_imports() -> None:
    data = dashboard()
    assert (data["uid"], data["schemaVersion"]) == ("rolegen-pair", 39) and data["title"]
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    for p in data["panels"]:
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, p["title"]
        if p["type"] != "row":
            assert p["datasource"] == DATASOURCE and p["targets"] and p["description"], p["title"]
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)) and all(t["datasource"] == DATASOURCE for t in p["targets"])
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["definition"] == "label_values(rolegen_pair_healthy, instance)"
    assert DASHBOARD.read_text() == json.dumps(data, indent=2, ensure_ascii=False) + "\n"  # one layout: clean diffs


def test_every_query_names_only_metrics_the_exporter_emits_and_each_is_on_a_panel() -> None:
    families, shown = emitted(), set()
    for title, expr in queries(dashboard()):
        names = metric_names(expr)
        assert names and names <= families, (title, expr, names - families)
        assert 'instance=~"$instance"' in expr, (title, expr)  # one exporter when both sites run one
        shown |= names
    assert families - shown == set()


def test_every_query_is_promql_promtool_parses(tmp_path: Path) -> None:
    """Each query as a recording rule, Grafana's variables given values: `promtool check rules` parses them all."""
    found = queries(dashboard())
    values = {"$instance": ".*", "$__rate_interval": "5m"}
    rules = [{"record": f"dashboard:query{n}", "expr": re.sub(r"\$\w+", lambda m: values[m[0]], expr)}
             for n, (_, expr) in enumerate(found)]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0 and f"SUCCESS: {len(found)} rules found" in checked.stdout, checked

"""`rolegen diff` without a cluster: usage, unreachable clusters, exit codes and JSON through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster.kubectl import Cluster
from rolegen.cluster.site_diff import Difference, SitePlan
from rolegen.commands import diff as diff_cmd
from rolegen.offline.spec import Spec

runner = CliRunner()


def write_kubeconfig(path: Path, contexts: tuple[str, ...] = ("gold", "golddr")) -> Path:
    """Contexts whose API server is a closed loopback port: connection refused, at once."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": c, "cluster": {"server": "http://127.0.0.1:1"}} for c in contexts],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": c, "context": {"cluster": c, "user": "u"}} for c in contexts],
        "current-context": contexts[0],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def fake_plan(spec: Spec, differences: tuple[Difference, ...] = ()) -> SitePlan:
    return SitePlan(
        environment=spec.environment,
        context=spec.context or "",
        namespace=spec.namespace,
        release=spec.release,
        declared_role=spec.role,
        live_role=spec.role,
        dcs_role=spec.role,
        revision=1,
        release_status="deployed",
        differences=differences,
        patroni_owned={},
        live_config={},
        target_config={},
        config_resource_version="1",
    )


@pytest.fixture
def drifting(monkeypatch: pytest.MonkeyPatch) -> None:
    """gold drifts on $.ttl; golddr only carries a hand-set key (shown, not drift)."""

    def read_plan(spec: Spec, cluster: Cluster, **_: Any) -> SitePlan:
        diffs = {
            "gold": (Difference("config", "$.ttl", "changed", 10, 30),),
            "golddr": (Difference("config", "$.work_mem", "extra", "8MB", None, drift=False),),
        }[spec.environment]
        return fake_plan(spec, diffs)

    monkeypatch.setattr(diff_cmd, "read_plan", read_plan)


def test_context_with_more_than_one_environment_is_a_usage_error(workdir: Path) -> None:
    result = runner.invoke(app, ["diff", "--all", "--context", "gold"])
    assert result.exit_code == 2
    assert "error: --context names one cluster: use it with exactly one --env" in result.stderr


def test_no_environment_is_a_usage_error(workdir: Path) -> None:
    result = runner.invoke(app, ["diff"])
    assert result.exit_code == 2 and "--env ENV, or use --all" in result.stderr


def test_unreachable_cluster_is_one_line_naming_the_context(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECACHEDIR", str(workdir / "kube-cache"))
    kubeconfig = write_kubeconfig(workdir / "kubeconfig")
    result = runner.invoke(app, ["diff", "--env", "golddr", "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the cluster of context golddr")
    assert "Traceback" not in result.output and result.stdout == ""

    result = runner.invoke(app, ["diff", "--env", "gold", "--kubeconfig", str(kubeconfig), "--context", "nope"])
    assert result.exit_code == 1 and "error: kubeconfig has no context nope" in result.stderr


@pytest.mark.usefixtures("workdir", "drifting")
def test_drift_exits_2_only_with_detailed_exitcode() -> None:
    plain = runner.invoke(app, ["diff", "--all"])
    assert plain.exit_code == 0
    assert "  config   $.ttl: 10 -> 30" in plain.stdout
    assert '  config   $.work_mem: extra "8MB" (kept; --prune removes)' in plain.stdout
    detailed = runner.invoke(app, ["diff", "--all", "--detailed-exitcode"])
    assert detailed.exit_code == 2 and detailed.stdout == plain.stdout
    assert runner.invoke(app, ["diff", "--env", "golddr", "--detailed-exitcode"]).exit_code == 0


@pytest.mark.usefixtures("workdir", "drifting")
def test_json_output_is_sorted_and_complete() -> None:
    result = runner.invoke(app, ["diff", "--all", "-f", "json", "--detailed-exitcode"])
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["drift"] is True
    assert [(e["environment"], e["drift"]) for e in data["environments"]] == [("gold", True), ("golddr", False)]
    assert data["environments"][0]["differences"] == [
        {"section": "config", "path": "$.ttl", "kind": "changed", "live": 10, "declared": 30, "drift": True}
    ]
    assert result.stdout == runner.invoke(app, ["diff", "--all", "-f", "json"]).stdout  # stable between runs


def test_the_dr_slot_is_shown_and_a_lost_one_is_an_error_naming_the_reseed(
    monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    from dataclasses import replace

    from tests.test_slot_status import MiB, leader, standby

    sites = {"gold": leader(5000 * MiB, 4990 * MiB), "golddr": standby(4995 * MiB, streaming=True)}

    def read_plan(spec: Spec, cluster: Cluster, **_: Any) -> SitePlan:
        return replace(fake_plan(spec), site=sites[spec.environment])

    monkeypatch.setattr(diff_cmd, "read_plan", read_plan)
    result = runner.invoke(app, ["diff", "--all", "--detailed-exitcode"])
    assert result.exit_code == 0, result.output
    assert ("  slot     slot golddr (for golddr): retains 10.0 MiB of WAL, wal_status reserved (bound 1GB); golddr "
            "streaming\n  no drift\n") in result.stdout
    data = json.loads(runner.invoke(app, ["diff", "--all", "-f", "json"]).stdout)
    assert data["environments"][0]["slot"]["retained_bytes"] == 10 * MiB
    assert data["environments"][1]["slot"] is None  # golddr keeps no slot while it is the standby
    sites["golddr"] = standby(3000 * MiB, streaming=False)
    result = runner.invoke(app, ["diff", "--all", "--detailed-exitcode"])
    assert result.exit_code == 1
    assert "LOST: golddr needs WAL that gold no longer holds" in result.stdout
    assert "hint: re-seed: rolegen reseed --env golddr" in result.stderr

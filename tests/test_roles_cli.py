"""CLI of the role-change verbs where no cluster is needed: runbooks, refusals, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rolegen.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("verb", "to", "first"),
    [
        ("switchover", "golddr", "Switchover to golddr (planned, zero acknowledged writes lost):"),
        ("failover", "golddr", "Failover to golddr (unplanned: gold failed):"),
        ("failback", "gold", "Failback to gold:"),
    ],
)
def test_dry_run_prints_the_numbered_runbook_and_touches_nothing(workdir: Path, verb: str, to: str, first: str) -> None:
    result = runner.invoke(app, [verb, "--to", to, "--dry-run", "--kubeconfig", str(workdir / "missing")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == first
    numbered = [line for line in lines if line[:1].isdigit()]
    assert numbered[0] == "1. Preflight"
    assert [int(line.split(".")[0]) for line in numbered] == list(range(1, len(numbered) + 1))


def test_unknown_target_is_a_usage_error(workdir: Path) -> None:
    result = runner.invoke(app, ["switchover", "--to", "silver", "--dry-run"])
    assert result.exit_code == 2
    assert "unknown environment 'silver'" in result.stderr


def test_bad_failback_method_is_a_usage_error(workdir: Path) -> None:
    result = runner.invoke(app, ["failback", "--to", "gold", "--method", "magic", "--dry-run"])
    assert result.exit_code == 2


def test_unreachable_cluster_names_the_context(workdir: Path) -> None:
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: gold, context: {cluster: c, user: u}}, {name: golddr, context: {cluster: c, user: u}}]\n"
        "current-context: gold\n"
    )
    result = runner.invoke(app, ["switchover", "--to", "golddr", "--yes", "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 1
    assert "context golddr" in result.stderr or "context gold" in result.stderr
    assert "Traceback" not in result.output
    status = runner.invoke(app, ["status", "--kubeconfig", str(kubeconfig)])
    assert status.exit_code == 1  # a script or a monitor sees that something is wrong
    assert "UNREACHABLE" in status.stdout
    assert "NOT HEALTHY: gold unreachable" in status.stdout


def test_old_site_down_reaches_the_failover(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rolegen.commands import roles

    seen: list[roles.RoleOptions] = []

    def run_failover(directory: Path, opts: roles.RoleOptions, *_: object) -> roles.RoleChangeResult:
        seen.append(opts)
        return roles.RoleChangeResult("failover", opts.to)

    monkeypatch.setattr(roles, "run_failover", run_failover)
    assert "--old-site-down" in runner.invoke(app, ["failover", "--help"]).stdout
    result = runner.invoke(app, ["failover", "--to", "golddr", "--yes", "--old-site-down"])
    assert result.exit_code == 0, result.output
    assert [o.old_site_down for o in seen] == [True]

"""`rolegen diff` and `rolegen apply` on the two-site lab (issue 6 acceptance), through the CLI as users run it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import lab_cluster as cluster
from rolegen import prompt
from rolegen.cli import app
from rolegen.cluster.helm import Releases
from rolegen.offline.render import dumps_json
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab
runner = CliRunner()


def cli(lab: Lab, *args: str, env_dir: Path | None = None) -> Any:
    return runner.invoke(app, [*args, "--dir", str(env_dir or lab.env_dir), "--kubeconfig", str(lab.kubeconfig)])


def config_map(lab: Lab, env: str) -> dict[str, Any]:
    cm = cluster(lab, env).get("configmap", "patroni-config")
    assert cm is not None
    return cm


def live_config(lab: Lab, env: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(config_map(lab, env)["metadata"]["annotations"]["config"])
    return config


def hand_patch(lab: Lab, env: str, config: dict[str, Any]) -> None:
    """What an operator does by hand: kubectl patch of the annotation (no resourceVersion)."""
    body = json.dumps({"metadata": {"annotations": {"config": dumps_json(config)}}})
    cluster(lab, env).kubectl("patch", "configmap", "patroni-config", "--type", "merge", "-p", body)


def revision(lab: Lab, env: str) -> int:
    release = Releases(cluster(lab, env)).get("patroni")
    assert release is not None
    return release.revision


def snapshot(lab: Lab) -> dict[str, Any]:
    """Everything apply could change on either site: the DCS config (object version included) and the release."""
    return {
        env: (config_map(lab, env)["metadata"]["resourceVersion"], live_config(lab, env), revision(lab, env))
        for env in ("gold", "golddr")
    }


def test_fresh_lab_has_no_drift_and_json_is_documented_shape(lab: Lab) -> None:
    result = cli(lab, "diff", "--all", "--detailed-exitcode", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["drift"] is False
    assert [e["environment"] for e in data["environments"]] == ["gold", "golddr"]
    gold = data["environments"][0]
    assert set(gold) == {
        "environment",
        "context",
        "namespace",
        "release",
        "role",
        "drift",
        "differences",
        "patroni_owned",
        "slot",
    }
    # gold leads and keeps the DR slot for golddr (Patroni publishes it within a loop of the bring-up). The lab
    # may be the lane's shared one, its small WAL settings already passed by earlier writes: extended, never lost.
    assert gold["slot"]["name"] == "golddr" and gold["slot"]["wal_status"] in ("reserved", "extended", "missing")
    assert data["environments"][1]["slot"] is None
    assert gold["role"] == {"declared": "leader", "live": "leader", "dcs": "leader"}
    assert gold["release"]["revision"] >= 1 and gold["release"]["status"] == "deployed"  # earlier modules apply
    # Shown but never drift: a key set by hand (an earlier module's `patronictl resume` leaves `pause: false`).
    assert [d for d in gold["differences"] if d["drift"]] == []
    assert gold["patroni_owned"]["initialize"].isdigit()  # shown, never drift


def test_hand_patch_is_drift_apply_converges_and_second_apply_is_not_changed(lab: Lab) -> None:
    before_revision = revision(lab, "gold")
    config = live_config(lab, "gold")
    config["maximum_lag_on_failover"] = 2048
    config["postgresql"]["parameters"]["work_mem"] = "8MB"  # a hand-set key rolegen does not declare
    hand_patch(lab, "gold", config)

    result = cli(lab, "diff", "--env", "gold", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "config   $.maximum_lag_on_failover: 2048 -> 1048576" in result.stdout
    assert 'config   $.postgresql.parameters.work_mem: extra "8MB" (kept; --prune removes)' in result.stdout
    assert "drift: 1 difference(s)" in result.stdout

    result = cli(lab, "apply", "--env", "gold", "--yes", "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert "config annotation written" in result.stdout
    converged = live_config(lab, "gold")
    assert converged["maximum_lag_on_failover"] == 1048576
    assert converged["postgresql"]["parameters"]["work_mem"] == "8MB"  # kept without --prune
    assert revision(lab, "gold") == before_revision  # values unchanged: Helm did not run

    result = cli(lab, "apply", "--env", "gold", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "Not changed"
    assert revision(lab, "gold") == before_revision
    assert cli(lab, "diff", "--env", "gold", "--detailed-exitcode").exit_code == 0  # extras are not drift

    result = cli(lab, "apply", "--env", "gold", "--yes", "--prune")
    assert result.exit_code == 0, result.output
    assert "work_mem" not in live_config(lab, "gold")["postgresql"]["parameters"]


def test_revision_increments_only_when_values_change(lab: Lab, tmp_path: Path) -> None:
    env_dir = tmp_path / "environments"
    shutil.copytree(lab.env_dir, env_dir)
    spec = env_dir / "gold.yaml"
    spec.write_text(spec.read_text().replace("interval: 10", "interval: 15"))
    before = revision(lab, "gold")
    initialize = config_map(lab, "gold")["metadata"]["annotations"]["initialize"]

    stale = cli(lab, "apply", "--env", "gold", "--yes", env_dir=env_dir)
    assert stale.exit_code == 1 and "refusing to apply gold" in stale.stderr
    assert revision(lab, "gold") == before

    assert runner.invoke(app, ["render", "--env", "gold", "--dir", str(env_dir)]).exit_code == 0
    result = cli(lab, "diff", "--env", "gold", "--detailed-exitcode", env_dir=env_dir)
    assert result.exit_code == 2 and "values   $.tsc.monitor.interval: 10 -> 15" in result.stdout

    dry = cli(lab, "apply", "--env", "gold", "--dry-run", env_dir=env_dir)
    assert dry.exit_code == 0 and "dry run, nothing changed" in dry.stdout
    assert revision(lab, "gold") == before

    result = cli(lab, "apply", "--env", "gold", "--yes", env_dir=env_dir)
    assert result.exit_code == 0, result.output
    assert revision(lab, "gold") == before + 1
    # Patroni-owned annotations survive a helm upgrade of the chart that renders <scope>-config.
    assert config_map(lab, "gold")["metadata"]["annotations"]["initialize"] == initialize
    again = cli(lab, "apply", "--env", "gold", "--yes", env_dir=env_dir)
    assert again.exit_code == 0 and again.stdout.splitlines()[-1] == "Not changed"
    assert revision(lab, "gold") == before + 1

    # Back to the lab's own specs (another revision: the values changed again).
    assert cli(lab, "apply", "--env", "gold", "--yes").exit_code == 0
    assert revision(lab, "gold") == before + 2


def test_apply_after_a_role_change_refuses_and_names_the_role_verb(lab: Lab, tmp_path: Path) -> None:
    """N1/N7: specs that swap the roles (as after a switchover recorded elsewhere) never move a role through
    apply or Helm: both sites refuse, nothing changes, and the hint is the role verb."""
    env_dir = tmp_path / "environments"
    shutil.copytree(lab.env_dir, env_dir)
    for env, role in (("gold", "standby-leader"), ("golddr", "leader")):
        assert runner.invoke(app, ["render", "--env", env, "--role", role, "--dir", str(env_dir)]).exit_code == 0
    before = snapshot(lab)

    for env, spec_role, live_role in (("golddr", "leader", "standby-leader"), ("gold", "standby-leader", "leader")):
        result = cli(lab, "apply", "--env", env, "--yes", env_dir=env_dir)
        assert result.exit_code == 1, result.output
        assert (f"refusing to apply {env}: its spec declares {spec_role}, its live DCS config {live_role}"
                in result.stderr)
        assert f"hint: record the live roles first: rolegen render --env {env} --role {live_role}" in result.stderr
        assert "to make golddr leader: rolegen switchover --to golddr" in result.stderr
        assert "Traceback" not in result.output
    assert snapshot(lab) == before
    assert lab.patroni_role("gold") == "leader" and lab.patroni_role("golddr") == "standby-leader"


def test_a_hand_set_key_survives_a_helm_upgrade_and_apply(lab: Lab, tmp_path: Path) -> None:
    """N6: a key set by hand (here `failsafe_mode`, as `patronictl edit-config` would) is kept through a values
    change (Helm runs) and the config write after it; `--prune` is what removes it."""
    config = live_config(lab, "gold")
    assert "failsafe_mode" not in config
    hand_patch(lab, "gold", {**config, "failsafe_mode": True})
    env_dir = tmp_path / "environments"
    shutil.copytree(lab.env_dir, env_dir)
    spec = env_dir / "gold.yaml"
    spec.write_text(spec.read_text().replace("interval: 10", "interval: 15"))
    assert runner.invoke(app, ["render", "--env", "gold", "--dir", str(env_dir)]).exit_code == 0
    before = revision(lab, "gold")

    result = cli(lab, "apply", "--env", "gold", "--yes", env_dir=env_dir)
    assert result.exit_code == 0, result.output
    assert revision(lab, "gold") == before + 1
    assert live_config(lab, "gold")["failsafe_mode"] is True
    back = cli(lab, "apply", "--env", "gold", "--yes")  # the lab's own values: Helm runs again
    assert back.exit_code == 0, back.output
    assert revision(lab, "gold") == before + 2 and live_config(lab, "gold")["failsafe_mode"] is True

    assert cli(lab, "apply", "--env", "gold", "--yes", "--prune").exit_code == 0
    assert "failsafe_mode" not in live_config(lab, "gold")
    assert cli(lab, "diff", "--all", "--detailed-exitcode").exit_code == 0


def test_a_change_while_the_plan_is_shown_stops_apply(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    config = live_config(lab, "gold")
    config["maximum_lag_on_failover"] = 4096
    hand_patch(lab, "gold", config)
    theirs = {**config, "maximum_lag_on_failover": 8192}

    def someone_else_writes(question: str, *, yes: bool, machine_output: bool = False) -> bool:
        hand_patch(lab, "gold", theirs)  # while the operator reads the plan
        return True

    monkeypatch.setattr(prompt, "confirm", someone_else_writes)
    result = cli(lab, "apply", "--env", "gold")
    assert result.exit_code == 1, result.output
    assert "error: gold changed since the plan was shown (DCS config annotation rewritten)" in result.stderr
    assert "hint: review it and re-run rolegen apply --env gold" in result.stderr
    assert "Traceback" not in result.output
    assert live_config(lab, "gold")["maximum_lag_on_failover"] == 8192  # theirs, not overwritten

    monkeypatch.undo()
    assert cli(lab, "apply", "--env", "gold", "--yes").exit_code == 0
    assert cli(lab, "diff", "--all", "--detailed-exitcode").exit_code == 0

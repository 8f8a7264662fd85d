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
from rolegen.helm import Releases
from rolegen.lab.lab import Lab
from rolegen.render import dumps_json

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
    # gold leads and keeps the DR slot for golddr (Patroni publishes it within a loop of the bring-up)
    assert gold["slot"]["name"] == "golddr" and gold["slot"]["wal_status"] in ("reserved", "missing")
    assert data["environments"][1]["slot"] is None
    assert gold["role"] == {"declared": "leader", "live": "leader", "dcs": "leader"}
    assert gold["release"]["revision"] == 1 and gold["release"]["status"] == "deployed"
    assert gold["differences"] == []
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


def test_promoting_golddr_while_gold_is_live_leader_is_refused(lab: Lab, tmp_path: Path) -> None:
    env_dir = tmp_path / "environments"
    shutil.copytree(lab.env_dir, env_dir)
    for env, role in (("gold", "standby-leader"), ("golddr", "leader")):  # demote first: never two leaders
        assert runner.invoke(app, ["render", "--env", env, "--role", role, "--dir", str(env_dir)]).exit_code == 0
    before = snapshot(lab)

    result = cli(lab, "apply", "--env", "golddr", "--yes", env_dir=env_dir)
    assert result.exit_code == 1
    assert "refusing to make golddr leader: its peer gold leads (DCS config leader, Patroni leader" in result.stderr
    assert "hint: demote the peer first" in result.stderr and "rolegen switchover --to golddr" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(lab) == before
    assert lab.live_role("gold") == "leader" and lab.live_role("golddr") == "standby-leader"


def test_change_between_read_and_write_is_reported_as_conflict(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
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
    assert "error: conflict: patroni-config on context gold changed after it was read" in result.stderr
    assert "Traceback" not in result.output
    assert live_config(lab, "gold")["maximum_lag_on_failover"] == 8192  # theirs, not overwritten

    monkeypatch.undo()
    assert cli(lab, "apply", "--env", "gold", "--yes").exit_code == 0
    assert cli(lab, "diff", "--all", "--detailed-exitcode").exit_code == 0


def test_roles_move_by_demoting_then_promoting_and_back(lab: Lab, tmp_path: Path) -> None:
    """The safe order through apply alone: demote the leader, then promote its peer (apply waits for each role),
    then the same back to the lab's own specs. Runs last: it moves both sites."""
    swapped = tmp_path / "environments"
    shutil.copytree(lab.env_dir, swapped)
    for env, role in (("gold", "standby-leader"), ("golddr", "leader")):
        assert runner.invoke(app, ["render", "--env", env, "--role", role, "--dir", str(swapped)]).exit_code == 0

    for env_dir, first, second in ((swapped, "gold", "golddr"), (lab.env_dir, "golddr", "gold")):
        demote = cli(lab, "apply", "--env", first, "--yes", "--timeout", "60", env_dir=env_dir)
        assert demote.exit_code == 0, demote.output
        assert f"{first}: Patroni reports standby-leader (" in demote.stdout
        promote = cli(lab, "apply", "--env", second, "--yes", "--timeout", "60", env_dir=env_dir)
        assert promote.exit_code == 0, promote.output
        assert f"{second}: Patroni reports leader (" in promote.stdout
        assert lab.live_role(first) == "standby-leader" and lab.live_role(second) == "leader"

    lab.wait_role("gold", "leader", 60)  # writable
    lab.wait_role("golddr", "standby-leader", 60)  # streaming from gold again
    result = cli(lab, "diff", "--all", "--detailed-exitcode")
    assert result.exit_code == 0, result.output

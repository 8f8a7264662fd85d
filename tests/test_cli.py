from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rolegen.cli import app

runner = CliRunner()


def snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*.yaml"))}


def test_no_args_shows_help_and_exit_codes() -> None:
    result = runner.invoke(app, [])
    assert "render" in result.output and "validate" in result.output
    assert "Exit codes" in result.output


def test_short_help_and_version() -> None:
    assert runner.invoke(app, ["render", "-h"]).exit_code == 0
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("rolegen ")


def test_render_all_on_committed_tree_is_not_changed(workdir: Path) -> None:
    before = snapshot(workdir)
    result = runner.invoke(app, ["render", "--all"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "Not changed"
    assert snapshot(workdir) == before


def test_check_passes_then_fails_with_diff_after_spec_edit(workdir: Path) -> None:
    assert runner.invoke(app, ["render", "--all", "--check"]).exit_code == 0
    spec = workdir / "environments/golddr.yaml"
    spec.write_text(spec.read_text().replace("port: 5432", "port: 53648"))
    gold = workdir / "environments/gold.yaml"
    gold.write_text(gold.read_text().replace("port: 5432", "port: 53648"))
    before = snapshot(workdir)
    result = runner.invoke(app, ["render", "--all", "--check"])
    assert result.exit_code == 1
    assert "+++ b/environments/generated/golddr/patches/patroni-config.yaml" in result.stdout
    assert '-    config: \'{"loop_wait"' in result.stdout
    assert "error: 3 generated file(s) stale" in result.stderr
    assert "hint: run: rolegen render --all" in result.stderr
    assert snapshot(workdir) == before


def test_role_standby_rewrites_only_the_role_line_and_regenerates(workdir: Path) -> None:
    # Demote first (zero leaders is allowed, with a warning), then promote the other site.
    gold = workdir / "environments/gold.yaml"
    original = gold.read_text()
    result = runner.invoke(app, ["render", "--env", "gold", "--role", "standby"])
    assert result.exit_code == 0, result.output
    assert "gold: role leader -> standby-leader" in result.stdout
    assert "nothing accepts writes" in result.stderr
    assert gold.read_text() == original.replace("role: leader\n", "role: standby-leader\n")
    patch = yaml.safe_load((workdir / "environments/generated/gold/patches/patroni-config.yaml").read_text())
    config = json.loads(patch["metadata"]["annotations"]["config"])
    # gold now streams through the DR slot golddr keeps for it (named after gold)
    assert config["standby_cluster"] == {"host": "patroni-master-golddr", "port": 5432, "primary_slot_name": "gold"}
    result = runner.invoke(app, ["render", "--env", "golddr", "--role", "leader"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["render", "--all", "--check"]).exit_code == 0


def test_role_that_makes_two_leaders_is_refused_and_nothing_written(workdir: Path) -> None:
    before = snapshot(workdir)
    result = runner.invoke(app, ["render", "--env", "golddr", "--role", "leader"])
    assert result.exit_code == 1
    assert "environments/golddr.yaml::$.role: gold and golddr are both leader" in result.stderr
    assert "hint: golddr cannot become leader while gold is: demote gold first" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(workdir) == before


def test_role_on_an_invalid_workspace_reports_its_errors_without_the_two_leaders_hint(workdir: Path) -> None:
    gold = workdir / "environments/gold.yaml"
    gold.write_text(gold.read_text().replace("port: 5432", "port: 70000"))
    before = snapshot(workdir)
    result = runner.invoke(app, ["render", "--env", "gold", "--role", "standby"])
    assert result.exit_code == 1
    assert "environments/gold.yaml::$.peer.port: 70000 is greater than the maximum of 65535" in result.stderr
    assert "hint:" not in result.stderr
    assert snapshot(workdir) == before


def test_role_already_declared_says_so_and_changes_nothing(workdir: Path) -> None:
    before = snapshot(workdir)
    result = runner.invoke(app, ["render", "--env", "gold", "--role", "leader"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "gold: role already leader"
    assert result.stdout.splitlines()[-1] == "Not changed"
    assert snapshot(workdir) == before


def test_format_json_prints_one_object_and_writes_nothing(workdir: Path) -> None:
    before = snapshot(workdir)
    result = runner.invoke(app, ["render", "--env", "golddr", "-f", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert sorted(data) == ["configmap_patches", "environment", "role", "values"]
    assert data["role"] == "standby-leader"
    assert sorted(data["configmap_patches"]) == ["patroni-config"]
    assert snapshot(workdir) == before


def test_stdout_prints_files_and_writes_nothing(workdir: Path) -> None:
    before = snapshot(workdir)
    result = runner.invoke(app, ["render", "--env", "gold", "--stdout"])
    assert result.exit_code == 0
    assert result.stdout.startswith("# Generated by rolegen from environments/gold.yaml")
    assert snapshot(workdir) == before


def test_reseed_prints_warning_patches(workdir: Path) -> None:
    before = snapshot(workdir)
    result = runner.invoke(app, ["render", "--env", "golddr", "--reseed"])
    assert result.exit_code == 0
    docs = list(yaml.safe_load_all(result.stdout))
    assert docs[0]["metadata"]["annotations"]["initialize"] is None
    assert "ONLY for a site whose every member was wiped" in result.stdout
    assert snapshot(workdir) == before


def test_render_from_another_directory_with_dir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir / "environments" / "generated")
    result = runner.invoke(app, ["render", "--all", "--check", "--dir", str(workdir / "environments")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["render"],
        ["render", "--env", "gold", "--all"],
        ["render", "--env", "silver"],
        ["render", "--env", "silver", "--role", "leader"],
        ["render", "--all", "--role", "leader"],
        ["render", "--env", "gold", "--role", "master"],
        ["render", "--all", "--check", "--stdout"],
        ["render", "--all", "--bogus"],
        ["render", "-f", "xml", "--all"],
    ],
)
def test_usage_errors_exit_2(workdir: Path, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_missing_environments_dir_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["render", "--all"])
    assert result.exit_code == 1
    assert "error: no environments directory at environments" in result.stderr
    assert "hint: run rolegen from the repository root, or pass --dir DIR" in result.stderr


def test_validate_ok(workdir: Path) -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0
    assert result.stdout == "ok: 6 file(s) valid\n"


def test_validate_collects_errors_across_files_and_writes_nothing(workdir: Path) -> None:
    gold = workdir / "environments/gold.yaml"
    gold.write_text(gold.read_text().replace("port: 5432", "port: 70000"))
    values = workdir / "environments/generated/golddr/values.yaml"
    values.write_text(values.read_text().replace("role: standby-leader", "role: master"))
    before = snapshot(workdir)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert "environments/gold.yaml::$.peer.port: 70000 is greater than the maximum of 65535" in lines
    assert any(
        line.startswith("environments/generated/golddr/values.yaml::$.role: 'master' is not one of") for line in lines
    )
    assert lines[-1].startswith("error: ") and "validation error(s)" in lines[-1]
    assert snapshot(workdir) == before


def test_validate_yaml_syntax_error_with_line_and_column(workdir: Path) -> None:
    (workdir / "environments/gold.yaml").write_text("environment: gold\nrole: [leader\n")
    result = runner.invoke(app, ["validate", "environments/gold.yaml"])
    assert result.exit_code == 1
    assert "environments/gold.yaml::$: YAML syntax error at line 3, column 1" in result.stderr


def test_unquoted_date_in_parameters_renders_as_the_string_written(workdir: Path) -> None:
    # PyYAML reads `2026-11-26 12:00:00` as a datetime; Patroni gets the parameter as text, so rolegen does too.
    gold = workdir / "environments/gold.yaml"
    gold.write_text(
        gold.read_text().replace("        wal_level: replica\n", "        wal_level: replica\n"
                                 "        recovery_target_time: 2026-11-26 12:00:00\n")
    )
    result = runner.invoke(app, ["render", "--all"])
    assert result.exit_code == 0, result.output
    patch = (workdir / "environments/generated/gold/patches/patroni-config.yaml").read_text()
    assert '"recovery_target_time":"2026-11-26 12:00:00"' in patch
    values = (workdir / "environments/generated/gold/values.yaml").read_text()
    assert "      recovery_target_time: '2026-11-26 12:00:00'\n" in values
    assert runner.invoke(app, ["validate"]).exit_code == 0
    assert runner.invoke(app, ["render", "--all", "--check"]).exit_code == 0


def test_validate_bad_patch_annotation(workdir: Path) -> None:
    patch = workdir / "environments/generated/golddr/patches/patroni-config.yaml"
    patch.write_text(patch.read_text().replace('"port":5432,', '"port":5432,"password":"x",'))
    result = runner.invoke(app, ["validate", str(patch), "-f", "json"])
    assert result.exit_code == 1
    assert "$.metadata.annotations.config<json>.standby_cluster" in result.stderr


def test_validate_json_format(workdir: Path) -> None:
    result = runner.invoke(app, ["validate", "-f", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["problems"] == []


def test_interrupt_exits_130(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("rolegen.commands.render.load_workspace", boom)
    result = runner.invoke(app, ["render", "--all"])
    assert result.exit_code == 130
    assert "error: interrupted" in result.stderr


def test_render_writes_dependents_then_removes_the_file_of_one_no_longer_declared(workdir: Path) -> None:
    from tests.dependents_example import add_example
    from tests.helpers import write_spec

    specs = add_example(workdir / "environments")
    result = runner.invoke(app, ["render", "--all"])
    assert result.exit_code == 0, result.output
    assert "created   environments/generated/golddr/dependents/web.yaml" in result.output
    web = workdir / "environments/generated/golddr/dependents/web.yaml"
    mtime = web.stat().st_mtime_ns
    assert runner.invoke(app, ["render", "--all"]).output.splitlines()[-1] == "Not changed"
    assert web.stat().st_mtime_ns == mtime
    for data in specs.values():
        data["dependents"] = data["dependents"][:1]
        write_spec(workdir / "environments", data)
    check = runner.invoke(app, ["render", "--all", "--check"])
    assert check.exit_code == 1 and "-  replicas: 0" in check.output
    result = runner.invoke(app, ["render", "--all"])
    assert "removed   environments/generated/golddr/dependents/web.yaml" in result.output and not web.exists()

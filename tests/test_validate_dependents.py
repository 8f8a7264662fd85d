"""`dependents:` and `hooks:` in validate: schema errors at their JSON paths, the rules of one spec, and the pair
rule (the same dependents on both sites). Every error is collected, and `rolegen validate` / `render` exit 1
writing nothing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from tests.dependents_example import add_example, with_example
from tests.helpers import write_spec
from tests.test_cli import runner, snapshot

from rolegen.cli import app
from rolegen.offline.load import Document
from rolegen.offline.validate import validate_specs


def _problems(gold: dict[str, Any], golddr: dict[str, Any], severity: str = "error") -> list[str]:
    docs = [Document(Path(f"environments/{s['environment']}.yaml"), f"environments/{s['environment']}.yaml", s)
            for s in (gold, golddr)]
    return [str(p) for p in validate_specs(docs).problems if p.severity == severity]


@pytest.fixture
def pair() -> tuple[dict[str, Any], dict[str, Any]]:
    return copy.deepcopy(with_example("gold")), copy.deepcopy(with_example("golddr"))


def test_the_readme_example_is_valid_on_both_sites(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    assert _problems(*pair) == [] and _problems(*pair, severity="warning") == []


def test_schema_errors_name_the_dependent_and_field(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    gold["dependents"][1]["replicas"] = {"leader": -1}
    gold["dependents"][1]["chart"] = "oci://x"
    gold["dependents"][0].pop("chart")
    gold["hooks"]["after_promote"] = {"command": [], "timeout": 0}
    errors = _problems(gold, golddr)
    for expected in (
        "environments/gold.yaml::$.dependents[0]: 'chart' is a required property",
        "environments/gold.yaml::$.dependents[1].replicas: 'standby-leader' is a required property",
        "environments/gold.yaml::$.dependents[1].replicas.leader: -1 is less than the minimum of 0",
        "environments/gold.yaml::$.dependents[1].chart: 'chart' does not apply to this kind of dependent (its "
        "fields: name, kind, timeout, workload, replicas)",
        "environments/gold.yaml::$.hooks.after_promote.command: [] should be non-empty",
        "environments/gold.yaml::$.hooks.after_promote.timeout: 0 is less than or equal to the minimum of 0",
    ):
        assert expected in errors


def test_secret_values_in_a_dependents_values_are_refused(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    gold["dependents"][0]["role_values"]["leader"]["admin"] = {"password": "hunter2"}
    [error] = [e for e in _problems(gold, golddr) if e.startswith("environments/gold.yaml")]
    assert error.startswith("environments/gold.yaml::$.dependents[0].role_values.leader.admin.password: key "
                            "'password' looks like a secret")


def test_names_and_targets_are_unique_and_never_the_databases_release(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    gold, golddr = pair
    for spec in (gold, golddr):
        spec["dependents"].append({"name": "web", "kind": "Deployment", "workload": "web",
                                   "replicas": {"leader": 1, "standby-leader": 0}})
        spec["dependents"][0]["release"] = "patroni"
    errors = _problems(gold, golddr)
    assert "environments/gold.yaml::$.dependents[2].name: dependent 'web' is declared twice (first at " \
        "$.dependents[1]); names are unique" in errors
    assert "environments/gold.yaml::$.dependents[2].workload: Deployment web is already dependent 'web': two " \
        "entries would fight over its shape" in errors
    assert any(e.startswith("environments/golddr.yaml::$.dependents[0].release: 'patroni' is the database's own "
                            "release") for e in errors)


def test_the_pair_declares_the_same_dependents(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    golddr["dependents"].pop(0)  # golddr lacks identity
    golddr["dependents"][0]["workload"] = "web-dr"
    errors = _problems(gold, golddr)
    assert errors == [
        "environments/gold.yaml::$.dependents[0].name: dependent 'identity' is not declared in "
        "environments/golddr.yaml: a pair has the same dependents on both sites (either may lead, and the other "
        "quiesces what it declares)",
        "environments/gold.yaml::$.dependents[1].workload: dependent 'web': workload differs between gold ('web') "
        "and golddr ('web-dr'); the pair runs the same application at both sites",
        "environments/golddr.yaml::$.dependents[0].workload: dependent 'web': workload differs between gold ('web') "
        "and golddr ('web-dr'); the pair runs the same application at both sites",
    ]


def test_a_chart_version_that_differs_is_a_warning(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    golddr["dependents"][0]["version"] = "3.3.0"
    assert _problems(gold, golddr) == []
    warnings = _problems(gold, golddr, severity="warning")
    assert [w.split("::")[0] for w in warnings] == ["environments/gold.yaml", "environments/golddr.yaml"]
    assert "version differs between gold ('3.2.1') and golddr ('3.3.0'); fine during a rollout" in warnings[0]


def test_a_credential_on_a_hooks_command_line_is_refused(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    gold["hooks"]["before_demote"]["command"] += ["--token=abc123"]
    [error] = _problems(gold, golddr)
    assert error.startswith("environments/gold.yaml::$.hooks.before_demote.command[2]: looks like a credential")


def test_a_workload_run_at_neither_site_is_a_warning(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    gold["dependents"][1]["replicas"]["leader"] = 0
    assert _problems(gold, golddr) == []
    assert _problems(gold, golddr, severity="warning") == [
        "environments/gold.yaml::$.dependents[1].replicas.leader: 0: Deployment web runs at neither site while this "
        "one leads; was standby-leader meant?"]


def test_cli_reports_every_error_exits_1_and_writes_nothing(workdir: Path) -> None:
    env_dir = workdir / "environments"
    specs = add_example(env_dir)
    assert runner.invoke(app, ["render", "--all"]).exit_code == 0
    before = snapshot(workdir)
    specs["gold"]["dependents"][1]["replicas"]["leader"] = "three"
    specs["golddr"]["dependents"][1]["timeout"] = -5
    for data in specs.values():
        write_spec(env_dir, data)
    before_specs = snapshot(workdir)
    for args in (["validate"], ["render", "--all"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert "environments/gold.yaml::$.dependents[1].replicas.leader: 'three' is not of type 'integer'" in \
            result.output
        assert "environments/golddr.yaml::$.dependents[1].timeout: -5 is less than or equal to the minimum of 0" in \
            result.output
        assert snapshot(workdir) == before_specs
    assert {k: v for k, v in before.items() if "generated" in k} == \
        {k: v for k, v in snapshot(workdir).items() if "generated" in k}


def test_a_generated_dependent_file_holding_a_secret_is_refused(workdir: Path) -> None:
    add_example(workdir / "environments")
    assert runner.invoke(app, ["render", "--all"]).exit_code == 0
    path = workdir / "environments/generated/gold/dependents/identity.yaml"
    path.write_text(path.read_text() + "api_token: abc\n")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1
    assert "environments/generated/gold/dependents/identity.yaml::$.api_token: key 'api_token' looks like a " \
        "secret" in result.output

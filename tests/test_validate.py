from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import spec_data

from rolegen.offline.load import Document
from rolegen.offline.validate import config_annotation_problems, validate_specs


def _docs(*specs: dict[str, Any]) -> list[Document]:
    return [
        Document(Path(f"environments/{s['environment']}.yaml"), f"environments/{s['environment']}.yaml", s)
        for s in specs
    ]


def _problems(gold: dict[str, Any], golddr: dict[str, Any]) -> list[str]:
    return [str(p) for p in validate_specs(_docs(gold, golddr)).problems if p.severity == "error"]


@pytest.fixture
def pair() -> tuple[dict[str, Any], dict[str, Any]]:
    return copy.deepcopy(spec_data("gold")), copy.deepcopy(spec_data("golddr"))


def test_bundled_pair_is_valid(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    result = validate_specs(_docs(*pair))
    assert result.problems == []
    assert sorted(result.specs) == ["gold", "golddr"]


def test_port_out_of_range_message_names_file_and_path(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    gold["peer"]["port"] = 70000
    assert "environments/gold.yaml::$.peer.port: 70000 is greater than the maximum of 65535" in _problems(gold, golddr)


def test_all_errors_are_collected_sorted_by_file_and_path(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    gold["peer"]["port"] = 0
    gold["role"] = "master"
    golddr["colour"] = "blue"
    errors = _problems(gold, golddr)
    assert errors == sorted(errors)
    assert any(e.startswith("environments/gold.yaml::$.peer.port: 0 is less than the minimum of 1") for e in errors)
    assert any(e.startswith("environments/gold.yaml::$.role: 'master' is not one of") for e in errors)
    assert any(
        e.startswith("environments/golddr.yaml::$: Additional properties are not allowed ('colour'") for e in errors
    )


@pytest.mark.parametrize(
    ("guard", "expected"),
    [
        ({"peer_unreachable": "later"}, "$.startup_guard.peer_unreachable: 'later' is not one of ['start', 'wait']"),
        ({"unreachable_grace": -1}, "$.startup_guard.unreachable_grace: -1 is less than the minimum of 0"),
        ({"unreachable_grace": "5m"}, "$.startup_guard.unreachable_grace: '5m' is not of type 'integer'"),
        ({"grace": 60}, "$.startup_guard: Additional properties are not allowed ('grace' was unexpected)"),
    ],
)
def test_a_bad_startup_guard_names_file_and_path(
    pair: tuple[dict[str, Any], dict[str, Any]], guard: dict[str, Any], expected: str
) -> None:
    gold, golddr = pair
    gold["startup_guard"] = guard
    assert f"environments/gold.yaml::{expected}" in _problems(gold, golddr)


def test_standby_credentials_are_refused_with_the_reason(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    golddr["patroni"]["standby"] = {"username": "replicator", "password": "hunter2"}
    errors = _problems(gold, golddr)
    assert any(
        e.startswith("environments/golddr.yaml::$.patroni.standby: Additional properties are not allowed")
        and "Patroni ignores credentials" in e
        for e in errors
    )


def test_password_like_keys_anywhere_in_dynamic_are_refused(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    gold["patroni"]["dynamic"]["postgresql"]["parameters"]["replication_password"] = "x"
    errors = _problems(gold, golddr)
    assert any(
        e.startswith("environments/gold.yaml::$.patroni.dynamic.postgresql.parameters.replication_password: key")
        and "looks like a secret" in e
        for e in errors
    )


def test_password_encryption_parameter_is_not_mistaken_for_a_secret(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    for spec in pair:
        spec["patroni"]["dynamic"]["postgresql"]["parameters"]["password_encryption"] = "scram-sha-256"
    assert _problems(*pair) == []


def test_standby_cluster_in_dynamic_is_refused(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    gold["patroni"]["dynamic"]["standby_cluster"] = {"host": "x", "port": 5432}
    assert any("standby_cluster is decided by role and peer" in e for e in _problems(gold, golddr))


def test_missing_peer_spec(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, _ = pair
    errors = [str(p) for p in validate_specs(_docs(gold)).problems]
    assert errors == [
        "environments/gold.yaml::$.peer.environment: peer 'golddr' has no valid spec (environments/golddr.yaml)"
    ]


def test_missing_peer_block(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    del golddr["peer"]
    assert "environments/golddr.yaml::$: 'peer' is a required property" in _problems(gold, golddr)


def test_peer_that_does_not_point_back(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    third = copy.deepcopy(golddr)
    third["environment"] = "silver"
    golddr["peer"]["environment"] = "silver"
    errors = [str(p) for p in validate_specs(_docs(gold, golddr, third)).problems if p.severity == "error"]
    assert "environments/gold.yaml::$.peer.environment: peer 'golddr' points at 'silver', not back at 'gold'" in errors


def test_two_leaders_is_an_error_on_both_files(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    golddr["role"] = "leader"
    errors = _problems(gold, golddr)
    assert [e for e in errors if "$.role" in e] == [
        "environments/gold.yaml::$.role: gold and golddr are both leader; a pair has exactly one leader site",
        "environments/golddr.yaml::$.role: gold and golddr are both leader; a pair has exactly one leader site",
    ]


def test_zero_leaders_is_only_a_warning(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    gold["role"] = "standby-leader"
    result = validate_specs(_docs(gold, golddr))
    assert {p.severity for p in result.problems} == {"warning"}
    assert "nothing accepts writes" in result.problems[0].message


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda g: g["helm"].update(release="pg"), "$.helm.release", "one release name"),
        (lambda g: g["patroni"].update(scope="other"), "$.patroni.scope", "one Patroni cluster"),
        (lambda g: g["peer"].update(port=15432), "$.peer.port", None),
        (lambda g: g["secrets"].update(replication="other"), "$.secrets", "same Secrets"),
        (lambda g: g["tsc"].update(create=False), "$.tsc.create", None),
        (
            lambda g: g["patroni"]["dynamic"]["postgresql"]["parameters"].update(max_connections=500),
            "$.patroni.dynamic.postgresql.parameters.max_connections",
            "refuses a lower value",
        ),
    ],
)
def test_pair_must_agree(
    pair: tuple[dict[str, Any], dict[str, Any]], mutate: Any, path: str, words: str | None
) -> None:
    gold, golddr = pair
    mutate(gold)
    found = [p for p in validate_specs(_docs(gold, golddr)).problems if p.path == path]
    assert {p.file for p in found} == {"environments/gold.yaml", "environments/golddr.yaml"}
    if words:
        assert all(words in p.message and p.severity == "error" for p in found)
    else:
        assert all(p.severity == "warning" for p in found)


def test_environment_must_match_file_name(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    doc = Document(Path("environments/gold.yaml"), "environments/gold.yaml", {**gold, "environment": "golden"})
    errors = [str(p) for p in validate_specs([doc, *_docs(golddr)]).problems]
    assert "environments/gold.yaml::$.environment: 'golden' must equal the file name 'gold'" in errors


def test_config_annotation_checks_json_and_standby_keys() -> None:
    assert config_annotation_problems("{", "f.yaml", "$.c")[0].message.startswith("config annotation is not JSON")
    bad = '{"standby_cluster":{"host":"h","port":1,"username":"u"}}'
    [problem] = config_annotation_problems(bad, "f.yaml", "$.c")
    assert problem.path == "$.c<json>.standby_cluster"
    assert "'username' was unexpected" in problem.message


def test_timings_patroni_would_rewrite_are_refused(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    gold, golddr = pair
    gold["patroni"]["dynamic"]["ttl"] = 10
    golddr["patroni"]["dynamic"].update(ttl=20, loop_wait=10, retry_timeout=10)
    errors = _problems(gold, golddr)
    assert "environments/gold.yaml::$.patroni.dynamic.ttl: 10 is less than the minimum of 20" in errors
    assert any(
        e.startswith("environments/golddr.yaml::$.patroni.dynamic.ttl: ttl 20 is less than loop_wait") for e in errors
    )


# The secret-key rule as first written (if/then/else over two mutually recursive definitions); the shipped schema
# says the same with one self-recursive definition, which jsonschema evaluates about a quarter faster.
_NO_SECRETS_AS_FIRST_WRITTEN = {
    "noSecrets": {
        "type": "object",
        "propertyNames": {"not": {"pattern": "(?i)^(.*[_-])?(passw(or)?d|secret|token|private[_-]?key|passphrase)$"}},
        "additionalProperties": {"$ref": "#/$defs/noSecretsValue"},
    },
    "noSecretsValue": {
        "if": {"type": "object"},
        "then": {"$ref": "#/$defs/noSecrets"},
        "else": {"if": {"type": "array"}, "then": {"items": {"$ref": "#/$defs/noSecretsValue"}}},
    },
}


def _broken_specs() -> list[dict[str, Any]]:
    """The bundled gold spec, valid and broken in the ways the schema checks."""
    gold = spec_data("gold")
    cases = [copy.deepcopy(gold) for _ in range(6)]
    params = cases[1]["patroni"]["dynamic"]["postgresql"]["parameters"]
    params["password"] = "x"
    params["lists"] = [{"api_token": "x", "fine": [{"PASSWORD": 1}, "secret"]}, [{"private-key": 1}]]
    cases[2]["patroni"]["dynamic"] = "not an object"
    cases[3]["patroni"]["dynamic"] = [{"password": 1}]
    broken = cases[4]
    broken["environment"] = "Gold"
    broken["peer"]["port"] = 0
    broken["peer"]["cidrs"] = ["10.0.0.0/99", "x"]
    broken["members"]["resources"]["limits"]["cpu"] = "lots"
    broken["members"]["storage"]["size"] = "5 GB"
    broken["secrets"]["superuser"] = "UPPER"
    broken["tsc"]["monitor"]["interval"] = 0
    broken["patroni"]["standby"] = {"username": "u", "password": "x"}
    broken["patroni"]["dynamic"]["standby_cluster"] = {"host": "h"}
    broken["patroni"]["dynamic"]["ttl"] = "30"
    del cases[5]["secrets"]
    cases[5]["kubernetes"]["namespace"] = "-bad-"
    return cases


@pytest.mark.parametrize("case", range(6))
def test_compiled_schema_reports_exactly_what_the_schema_files_say(case: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from rolegen.offline import validate
    from rolegen.package_data import load_schema

    spec = _broken_specs()[case]
    shipped = load_schema("environment")
    first_written = {**shipped, "$defs": {**shipped["$defs"], **_NO_SECRETS_AS_FIRST_WRITTEN}}

    def problems(schema: dict[str, Any] | None, compile_refs: bool) -> list[str]:
        validate._validator.cache_clear()
        with monkeypatch.context() as patch:
            if schema is not None:
                patch.setattr(validate, "load_schema", lambda name: schema)
            if not compile_refs:
                patch.setattr(validate, "inline_refs", lambda s: s)
            found = [str(p) for p in validate.schema_problems(spec, "environment", "environments/gold.yaml")]
        validate._validator.cache_clear()
        return found

    reported = problems(None, compile_refs=True)
    assert reported == problems(shipped, compile_refs=False)
    assert reported == problems(first_written, compile_refs=False)
    assert (reported == []) == (case == 0)

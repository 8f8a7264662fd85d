from __future__ import annotations

from pathlib import Path

from rolegen.offline.load import load_document, parse_yaml


def test_syntax_error_names_file_line_and_column() -> None:
    data, problems = parse_yaml("environment: gold\nrole: [leader\n", "environments/gold.yaml")
    assert data is None
    assert len(problems) == 1
    text = str(problems[0])
    assert text.startswith("environments/gold.yaml::$: YAML syntax error at line ")
    assert "column" in text


def test_duplicate_keys_are_refused_not_silently_merged() -> None:
    _, problems = parse_yaml("role: leader\nrole: standby-leader\n", "env.yaml")
    assert [p.message for p in problems] == ["YAML syntax error at line 2, column 1: duplicate key 'role'"]


def test_keys_become_strings() -> None:
    data, problems = parse_yaml("1: a\ntrue: b\n", "x.yaml")
    assert problems == []
    assert data == {"1": "a", "True": "b"}


def test_unreadable_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"\xff\xfe\x00")
    doc, problems = load_document(tmp_path / "bad.yaml", tmp_path)
    assert doc is None
    assert problems[0].file == "bad.yaml"
    assert "UTF-8" in problems[0].message

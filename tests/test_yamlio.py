"""YAML in and out: JSON data only, and the same bytes and messages whether or not PyYAML has libyaml."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from rolegen.offline import yamlio
from rolegen.offline.load import parse_yaml

REPO = Path(__file__).resolve().parent.parent


def pure_pyyaml_dump(data: Any) -> str:
    """What generated files held before libyaml was used: PyYAML's own emitter."""
    return yaml.dump(data, Dumper=yaml.SafeDumper, sort_keys=True, default_flow_style=False, allow_unicode=True,
                     width=1 << 16)


def test_unquoted_dates_and_timestamps_stay_the_string_written() -> None:
    data, problems = parse_yaml("d: 2026-11-26\nt: 2026-11-26 12:00:00\nz: 2026-11-26T12:00:00Z\n", "x.yaml")
    assert problems == []
    assert data == {"d": "2026-11-26", "t": "2026-11-26 12:00:00", "z": "2026-11-26T12:00:00Z"}


def test_a_date_string_is_written_quoted_so_it_reads_back_as_a_string() -> None:
    assert yamlio.dump({"recovery_target_time": "2026-11-26"}) == "recovery_target_time: '2026-11-26'\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!binary aGVsbG8=\n", "line 1, column 4: tag !!binary has no JSON form; write a plain value"),
        ("a:\n  b: !!set {x}\n", "line 2, column 6: tag !!set has no JSON form; write a plain value"),
        ("a: !!omap [{x: 1}]\n", "line 1, column 4: tag !!omap has no JSON form; write a plain value"),
    ],
)
def test_tags_without_a_json_form_are_refused_with_their_line(text: str, message: str) -> None:
    data, problems = parse_yaml(text, "x.yaml")
    assert data is None
    assert [str(p) for p in problems] == [f"x.yaml::$: YAML syntax error at {message}"]


def test_duplicate_key_in_a_nested_mapping_is_refused() -> None:
    _, problems = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\n", "x.yaml")
    assert [p.message for p in problems] == ["YAML syntax error at line 4, column 3: duplicate key 'c'"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("role: [leader\n", "line 2, column 1: expected ',' or ']', but got '<stream end>'"),
        ("a:\n\tb: 1\n", "line 2, column 1: found character '\\t' that cannot start any token"),
        ("a: b: c\n", "line 1, column 5: mapping values are not allowed here"),
    ],
)
def test_syntax_errors_read_in_pyyaml_s_words(text: str, message: str) -> None:
    _, problems = parse_yaml(text, "x.yaml")
    assert [p.message for p in problems] == [f"YAML syntax error at {message}"]


@pytest.mark.parametrize("env", ["gold", "golddr"])
def test_both_parsers_load_the_bundled_specs_identically(env: str) -> None:
    text = (REPO / "environments" / f"{env}.yaml").read_text(encoding="utf-8")
    assert yaml.load(text, Loader=yamlio.FastLoader) == yaml.load(text, Loader=yamlio.PythonLoader)


@pytest.mark.parametrize(
    "data",
    [
        {"": "empty key"},
        {"label": "emoji \U0001f600"},
        {"restore_command": "cp %f %p\r\n"},
        {"a": ["", " lead", "trail ", "multi\nline\n", "# not a comment", "yes", "on", "0x1f", "1e3", "~", "é 日本"]},
        {"n": [1, -0.0, 1.5, 1e300, float("inf"), True, None], "nested": {"x": {"y": [{"z": "2026-11-26"}]}}},
    ],
)
def test_generated_yaml_is_pyyaml_s_bytes_for_tricky_values(data: dict[str, Any]) -> None:
    assert yamlio.dump(data) == pure_pyyaml_dump(data)


def _random_data(rng: random.Random) -> dict[str, Any]:
    pieces = [chr(c) for c in range(0x20, 0x7F)] + ["\n", "\t", "\r", "\x85", "\u2028", "\ufeff", "é", "日本",
              "\U0001f600", "yes", "null", "~", "1.5", "0x1f", "2026-11-26", "12:30", "---", "...", "<<", ": ", " #"]

    def text() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))

    def value(depth: int) -> Any:
        r = rng.random()
        if depth < 3 and r < 0.2:
            return {text(): value(depth + 1) for _ in range(rng.randint(0, 4))}
        if depth < 3 and r < 0.3:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        if r < 0.35:
            return rng.randint(-(10**6), 10**6)
        if r < 0.4:
            return rng.choice([True, False, None, 1.5, -0.0, 1e300])
        return text()

    return {text(): value(0) for _ in range(3)}


def test_generated_yaml_is_pyyaml_s_bytes_for_random_data() -> None:
    rng = random.Random(13)
    for _ in range(2000):
        data = _random_data(rng)
        assert yamlio.dump(data) == pure_pyyaml_dump(data), data

"""Local `$defs` references inlined (rolegen.offline.schema_refs): the compiled schema gives the same verdicts,
and a recursive entry stays a reference below the unrolled depth, so compiling terminates."""

from __future__ import annotations

from typing import Any

import jsonschema

from rolegen.offline.schema_refs import inline_refs

SCHEMA: dict[str, Any] = {
    "$defs": {
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        # recursive, like the environment schema's noSecretsValue
        "tree": {"type": "object", "additionalProperties": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/tree"}]}},
    },
    "type": "object",
    "properties": {
        "port": {"$ref": "#/$defs/port", "description": "a sibling of the reference"},
        "labels": {"$ref": "#/$defs/tree"},
    },
}


def _refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    return []


def test_a_plain_reference_is_replaced_by_its_entry_beside_its_siblings() -> None:
    port = inline_refs(SCHEMA)["properties"]["port"]
    assert port == {"description": "a sibling of the reference",
                    "allOf": [{"type": "integer", "minimum": 1, "maximum": 65535}]}


def test_a_recursive_entry_is_unrolled_then_stays_a_reference() -> None:
    compiled = inline_refs(SCHEMA, unroll=2)
    assert set(_refs(compiled["properties"])) == {"#/$defs/tree"}  # only the recursive one is left, deep down
    assert _refs(inline_refs(SCHEMA, unroll=0)["properties"]["labels"]) == ["#/$defs/tree"]


def test_the_compiled_schema_gives_the_same_verdicts_and_messages() -> None:
    instances = [{"port": 5432}, {"port": 0}, {"port": "x"}, {"labels": {"a": {"b": {"c": {"d": 1}}}}},
                 {"labels": {"a": {"b": "ok"}}, "port": 70000}]
    plain = jsonschema.Draft202012Validator(SCHEMA)
    compiled = jsonschema.Draft202012Validator(inline_refs(SCHEMA))
    for instance in instances:
        def seen(validator: jsonschema.protocols.Validator, data: Any = instance) -> list[tuple[str, str]]:
            return sorted((e.json_path, e.message) for e in validator.iter_errors(data))
        assert seen(compiled) == seen(plain), instance
    assert not list(compiled.iter_errors({"port": 5432}))

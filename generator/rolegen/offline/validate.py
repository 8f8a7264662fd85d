"""Validate layer: JSON Schema (every error, sorted by path) plus the rules that span both environments."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema

from rolegen.errors import Problem
from rolegen.offline import sync
from rolegen.offline.load import Document
from rolegen.offline.schema_refs import inline_refs
from rolegen.offline.slots import pair_problems as slot_pair_problems
from rolegen.offline.slots import spec_problems as slot_problems
from rolegen.offline.spec import Spec
from rolegen.offline.validate_dependents import pair_problems as dependents_pair_problems
from rolegen.offline.validate_dependents import spec_problems as dependents_spec_problems
from rolegen.offline.validate_guard import pair_problems as guard_pair_problems
from rolegen.offline.validate_guard import spec_problems as guard_spec_problems
from rolegen.offline.validate_tls import pair_problems as tls_pair_problems
from rolegen.offline.validate_tls import spec_problems as tls_spec_problems
from rolegen.offline.validate_witness import pair_problems as witness_pair_problems
from rolegen.offline.validate_witness import spec_problems as witness_spec_problems
from rolegen.package_data import load_schema

_SECRET_HINT = "secret values never go in a spec or generated file: reference a Secret name under secrets:"


def _message(error: jsonschema.ValidationError) -> str:
    # jsonschema's own wording is good except where a `not` hides the reason.
    if error.validator == "propertyNames" or (
        error.validator == "not" and isinstance(error.instance, str) and "propertyNames" in error.schema_path
    ):
        return f"key {error.instance!r} looks like a secret; {_SECRET_HINT}"
    if _misplaced_key(error):
        allowed = ", ".join(str(name) for name in error.validator_value)  # type: ignore[union-attr]
        return f"{error.instance!r} does not apply to this kind of dependent (its fields: {allowed})"
    if error.validator == "not" and error.validator_value == {"required": ["standby_cluster"]}:
        return "standby_cluster is decided by role and peer; remove it (extra keys go in patroni.standby)"
    credentials = isinstance(error.instance, dict) and {"username", "password"} & set(error.instance)
    if error.validator == "additionalProperties" and "standby" in error.absolute_path and credentials:
        return (
            f"{error.message}; Patroni ignores credentials in standby_cluster (the standby uses its local "
            "replication user: reference the same Secret names on both sites)"
        )
    return error.message


def _error_path(error: jsonschema.ValidationError) -> str:
    path = error.json_path
    if error.validator == "not" and isinstance(error.instance, str) and "propertyNames" in error.schema_path:
        # propertyNames errors point at the object; name the offending key.
        path = f"{path}.{error.instance}"
    elif _misplaced_key(error):
        path = f"{path}.{error.instance}"
    return path


def _misplaced_key(error: jsonschema.ValidationError) -> bool:
    """A key outside the fields of a dependent's kind (the schema lists them as an enum of propertyNames)."""
    return error.validator == "enum" and "propertyNames" in error.schema_path and isinstance(error.instance, str)


@cache
def _validator(schema_name: str) -> jsonschema.protocols.Validator:
    """The validator of schema `schema_name` (package_data.schema_path), compiled once per process (see
    `inline_refs`).

    No format checker: the schemas use patterns, not `format`.
    """
    return jsonschema.Draft202012Validator(inline_refs(load_schema(schema_name)))


def schema_problems(data: Any, schema_name: str, display: str) -> list[Problem]:
    problems = {Problem(display, _error_path(e), _message(e)) for e in _validator(schema_name).iter_errors(data)}
    return sorted(problems)


@dataclass(frozen=True)
class SpecSet:
    """Every environment that validated, by name; `problems` holds errors and warnings for all of them."""

    specs: dict[str, Spec]
    problems: list[Problem]


def validate_specs(docs: list[Document]) -> SpecSet:
    problems: list[Problem] = []
    specs: dict[str, Spec] = {}
    for doc in docs:
        found = schema_problems(doc.data, "environment", doc.display)
        stem = doc.path.stem
        if isinstance(doc.data, dict) and doc.data.get("environment") not in (None, stem):
            found.append(
                Problem(doc.display, "$.environment", f"{doc.data['environment']!r} must equal the file name {stem!r}")
            )
        if not found:
            spec = Spec.from_dict(doc.data, doc.display)
            found += _timing_problems(spec) + slot_problems(spec) + tls_spec_problems(spec)
            found += witness_spec_problems(spec) + guard_spec_problems(spec) + dependents_spec_problems(spec)
            found += sync.spec_problems(spec)
            specs[stem] = spec
        problems += found
    problems += cross_env_problems(specs)
    return SpecSet(sync.attach(specs), sorted(set(problems)))


def _timing_problems(spec: Spec) -> list[Problem]:
    """Patroni silently adjusts timings that break loop_wait + 2 * retry_timeout <= ttl (and writes them back,
    which would show as drift forever): refuse them here."""
    d = spec.dynamic
    ttl, loop_wait, retry = d.get("ttl", 30), d.get("loop_wait", 10), d.get("retry_timeout", 10)
    if loop_wait + 2 * retry > ttl:
        return [
            Problem(
                spec.source,
                "$.patroni.dynamic.ttl",
                f"ttl {ttl} is less than loop_wait + 2 * retry_timeout ({loop_wait} + 2 * {retry}); Patroni "
                "would adjust it",
            )
        ]
    return []


def cross_env_problems(specs: Mapping[str, Spec]) -> list[Problem]:
    """Rules no single file can check: the pair points at each other and agrees on what both must share."""
    problems: list[Problem] = []
    for name, spec in sorted(specs.items()):
        src = spec.source
        peer_name = spec.peer.environment
        if peer_name == name:
            problems.append(Problem(src, "$.peer.environment", "an environment cannot be its own peer"))
            continue
        peer = specs.get(peer_name)
        if peer is None:
            problems.append(
                Problem(
                    src, "$.peer.environment", f"peer {peer_name!r} has no valid spec (environments/{peer_name}.yaml)"
                )
            )
            continue
        if peer.peer.environment != name:
            problems.append(
                Problem(
                    src,
                    "$.peer.environment",
                    f"peer {peer_name!r} points at {peer.peer.environment!r}, not back at {name!r}",
                )
            )
            continue
        if name > peer_name:
            continue  # pair rules below are reported once, on the alphabetically first of the two
        problems += _pair_problems(spec, peer)
    return problems


def _pair_problems(a: Spec, b: Spec) -> list[Problem]:
    problems: list[Problem] = []

    def both(path: str, message: str, severity: str = "error") -> None:
        problems.extend(Problem(s.source, path, message, severity) for s in (a, b))

    if a.release != b.release and not (sync.synchronous(a) and sync.synchronous(b)):  # sync: must differ
        both(
            "$.helm.release",
            f"release differs between {a.environment} and {b.environment} "
            f"({a.release!r} vs {b.release!r}); a pair shares one release name (except with witness replication "
            "sync, which needs distinct member names)",
        )
    if a.scope != b.scope:
        both(
            "$.patroni.scope",
            f"scope differs between {a.environment} and {b.environment} "
            f"({a.scope!r} vs {b.scope!r}); both sites are one Patroni cluster",
        )
    if a.peer.port != b.peer.port:
        # A warning, not an error: one claim usually yields one port on both sides, but the tunnel is the
        # platform's, and rolegen only needs each side's own peer address to be right.
        both(
            "$.peer.port",
            f"peer.port differs between {a.environment} ({a.peer.port}) and {b.environment} ({b.peer.port}); "
            "one TSC tunnel normally has one port on both sides",
            "warning",
        )
    if a.peer.host == b.peer.host:
        both("$.peer.host", f"both sites reach their peer as {a.peer.host!r}; each side's Service names the other")
    if a.secrets != b.secrets:
        both(
            "$.secrets",
            "Secret names differ between the pair; a standby replicates and rewinds with its "
            "local credentials, so both sites must reference the same Secrets",
        )
    pa, pb = a.hot_standby_parameters(), b.hot_standby_parameters()
    for key in sorted(set(pa) | set(pb)):
        if pa.get(key) != pb.get(key):
            both(
                f"$.patroni.dynamic.postgresql.parameters.{key}",
                f"{key} differs ({a.environment}: {pa.get(key)}, {b.environment}: {pb.get(key)}); either site may "
                "lead, and a hot standby refuses a lower value than its primary's",
            )
    leaders = [s for s in (a, b) if s.role == "leader"]
    if len(leaders) == 2:
        both("$.role", f"{a.environment} and {b.environment} are both leader; a pair has exactly one leader site")
    elif not leaders:
        both("$.role", f"neither {a.environment} nor {b.environment} is leader; nothing accepts writes", "warning")
    problems += slot_pair_problems(a, b)
    problems += tls_pair_problems(a, b)
    problems += witness_pair_problems(a, b)
    problems += guard_pair_problems(a, b)
    problems += dependents_pair_problems(a, b)
    creators = [s for s in (a, b) if s.tsc.get("create")]
    if len(creators) == 2:
        both("$.tsc.create", "both sites create the TransportServerClaim; exactly one cluster hosts it")
    elif not creators:
        both(
            "$.tsc.create", "neither site creates the TransportServerClaim; the tunnel must exist elsewhere", "warning"
        )
    return problems


def config_annotation_problems(text: str, display: str, path: str) -> list[Problem]:
    """The `config` annotation must be a JSON object Patroni can load, holding no secret-like key."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        return [Problem(display, path, f"config annotation is not JSON: {exc.msg} at char {exc.pos}")]
    if not isinstance(config, dict):
        return [Problem(display, path, "config annotation must be a JSON object")]
    errors = _annotation_validator().iter_errors(config)
    return sorted({Problem(display, f"{path}<json>{_error_path(e)[1:]}", _message(e)) for e in errors})


def dependent_document_problems(data: Any, display: str) -> list[Problem]:
    """A dependent's generated file (its values, or its merge patch): a mapping holding Secret names only."""
    return sorted({Problem(display, _error_path(e), _message(e)) for e in _dependent_validator().iter_errors(data)})


@cache
def _dependent_validator() -> jsonschema.protocols.Validator:
    schema = {"$defs": load_schema("environment")["$defs"], "$ref": "#/$defs/noSecrets"}
    return jsonschema.Draft202012Validator(inline_refs(schema))


@cache
def _annotation_validator() -> jsonschema.protocols.Validator:
    schema = {
        "$defs": load_schema("environment")["$defs"],
        "type": "object",
        "allOf": [{"$ref": "#/$defs/noSecrets"}],
        "properties": {"standby_cluster": _standby_cluster()},
    }
    return jsonschema.Draft202012Validator(inline_refs(schema))


# The keys Patroni accepts in standby_cluster; it silently drops anything else. host and port come from `peer`,
# the others from `patroni.standby`, which both JSON Schemas (environment, values) list: they cannot import this,
# so tests/test_structure.py holds them equal to it.
STANDBY_CLUSTER_KEYS = (
    "host",
    "port",
    "primary_slot_name",
    "create_replica_methods",
    "restore_command",
    "archive_cleanup_command",
    "recovery_min_apply_delay",
)


def _standby_cluster() -> dict[str, Any]:
    """standby_cluster in a `config` annotation: Patroni's keys, each typed as the values schema types it."""
    typed = {
        "host": {"type": "string"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        **load_schema("values")["properties"]["patroni"]["properties"]["standby"]["properties"],
    }
    return {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {key: typed[key] for key in STANDBY_CLUSTER_KEYS},
    }

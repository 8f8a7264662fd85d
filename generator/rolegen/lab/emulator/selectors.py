"""Label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors (metadata.name/namespace)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_KEY_RE = re.compile(r"^([A-Za-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}


class SelectorError(ValueError):
    """An unparsable selector; the server answers 400 BadRequest."""


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside `( ... )` (set-based requirements contain commas)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _key(key: str, req: str) -> str:
    if not _KEY_RE.match(key):
        raise SelectorError(f"invalid label key {key!r} in {req!r}")
    return key


def _requirement(req: str) -> Callable[[dict[str, str]], bool]:
    m = _SET_RE.match(req)
    if m:
        _key(m.group(1), req)
        key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in req:
            key, _, value = (s.strip() for s in req.partition(op))
            _key(key, req)
            if not _VALUE_RE.match(value):
                raise SelectorError(f"invalid label value {value!r} in {req!r}")
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if req.startswith("!"):
        key = _key(req[1:].strip(), req)
        return lambda labels: key not in labels
    _key(req, req)
    return lambda labels: req in labels


def label_selector(text: str | None) -> Predicate:
    reqs = [_requirement(r) for r in _split_top_level(text or "")]

    def match(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r(labels) for r in reqs)

    return match


def field_selector(text: str | None) -> Predicate:
    checks: list[tuple[tuple[str, str], str, bool]] = []
    for req in _split_top_level(text or ""):
        for op in ("!=", "==", "="):
            if op in req:
                field, _, value = (s.strip() for s in req.partition(op))
                if field not in _FIELDS:
                    raise SelectorError(f'field label not supported: "{field}"')
                checks.append((_FIELDS[field], value, op != "!="))
                break
        else:
            raise SelectorError(f"invalid field selector {req!r}")

    def match(obj: dict[str, Any]) -> bool:
        for (outer, inner), value, equal in checks:
            actual = ((obj.get(outer) or {}).get(inner)) or ""
            if (actual == value) != equal:
                return False
        return True

    return match


def selects(label: str | None, field: str | None) -> Predicate:
    by_label, by_field = label_selector(label), field_selector(field)
    return lambda obj: by_label(obj) and by_field(obj)


def label_string(match_labels: dict[str, str]) -> str:
    """`{"a": "b"}` -> `a=b`, the form Scale.status.selector uses."""
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))

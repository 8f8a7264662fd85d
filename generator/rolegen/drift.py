"""Pure comparison of what rolegen renders with what a cluster holds (via deepdiff), for `diff` and `apply`."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from deepdiff import DeepDiff

_SECRETISH = re.compile(r"(?i)^(.*[_-])?(passw(or)?d|secret|token|private[_-]?key|passphrase)$")
REDACTED = "<redacted>"
# Keys of the `config` annotation that the role decides: their absence is drift, never "extra, kept".
ROLE_OWNED = ("standby_cluster",)


@dataclass(frozen=True, order=True)
class Difference:
    section: str  # values | config | role | release
    path: str  # JSON path inside the section, e.g. $.postgresql.parameters.max_connections
    kind: str  # changed | missing (declared, not live) | extra (live only)
    live: Any
    declared: Any
    drift: bool = True  # False: shown, but neither counted nor changed (hand-set extra keys)

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "path": self.path,
            "kind": self.kind,
            "live": self.live,
            "declared": self.declared,
            "drift": self.drift,
        }


def _json_path(parts: list[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _redact(parts: list[Any], value: Any) -> Any:
    return REDACTED if any(isinstance(p, str) and _SECRETISH.match(p) for p in parts) else value


def compare(section: str, live: Any, declared: Any, *, extra_is_drift: bool = True) -> list[Difference]:
    """Every difference between `live` and `declared`, with secret-looking values redacted."""
    tree = DeepDiff(live, declared, verbose_level=2, view="tree")
    found: list[Difference] = []
    for category, levels in tree.items():
        for level in levels:
            parts = level.path(output_format="list")
            path = _json_path(parts)
            if category in ("dictionary_item_removed", "iterable_item_removed", "attribute_removed"):
                is_drift = extra_is_drift or bool(parts and parts[0] in ROLE_OWNED)
                kind, old, new, drift = "extra", level.t1, None, is_drift
            elif category in ("dictionary_item_added", "iterable_item_added", "attribute_added"):
                kind, old, new, drift = "missing", None, level.t2, True
            else:
                kind, old, new, drift = "changed", level.t1, level.t2, True
            found.append(Difference(section, path, kind, _redact(parts, old), _redact(parts, new), drift))
    return sorted(found)


def keep_extra(live: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """`declared`, plus keys only the live config has (set by hand) — except role-owned ones."""
    merged = copy.deepcopy(declared)
    for key, value in live.items():
        if key in ROLE_OWNED and key not in declared:
            continue
        if key not in merged:
            merged[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = keep_extra(value, merged[key])
    return merged

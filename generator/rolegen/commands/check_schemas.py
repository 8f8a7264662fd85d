"""`rolegen check-schemas`: every schema is itself valid JSON Schema 2020-12 (the metaschema check)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from rolegen.errors import Problem, ValidationFailed
from rolegen.offline.load import display_name
from rolegen.package_data import shipped_schemas


@dataclass(frozen=True)
class CheckSchemasResult:
    files: list[str]  # the schemas checked, all valid (problems raise)

    def lines(self) -> list[str]:
        return [f"ok: {len(self.files)} schema(s) valid"]

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files}


def run(paths: list[Path]) -> CheckSchemasResult:
    """Check `paths` (default: the schemas rolegen ships); return the files checked."""
    targets = paths or shipped_schemas()
    problems: list[Problem] = []
    for path in targets:
        display = display_name(path)
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(Problem(display, "$", f"not a readable JSON document: {exc}"))
            continue
        meta = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        if meta is not jsonschema.Draft202012Validator:
            problems.append(Problem(display, "$.$schema", "rolegen schemas use JSON Schema 2020-12"))
        for error in meta(meta.META_SCHEMA).iter_errors(schema):
            problems.append(Problem(display, error.json_path, error.message))
    if problems:
        raise ValidationFailed(problems)
    return CheckSchemasResult([display_name(p) for p in targets])

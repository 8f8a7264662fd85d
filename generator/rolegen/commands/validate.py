"""`rolegen validate`: specs and generated files against schemas/, plus the pair rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.errors import Problem, ValidationFailed
from rolegen.offline.load import GENERATED_DIR, Document, generated_paths, load_document, spec_paths
from rolegen.offline.validate import (
    config_annotation_problems,
    dependent_document_problems,
    schema_problems,
    validate_specs,
)


@dataclass(frozen=True)
class ValidateResult:
    files: list[str]
    problems: list[Problem]  # warnings only: errors raise (the CLI prints them on stderr)

    def lines(self) -> list[str]:
        return [f"ok: {len(self.files)} file(s) valid"]

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "problems": [vars(p) for p in self.problems]}


def run(env_dir: Path, paths: list[Path]) -> ValidateResult:
    """Validate `paths` (default: every spec and generated file). Pair rules always see every spec."""
    targets = paths or [*spec_paths(env_dir), *generated_paths(env_dir)]
    generated_root = (env_dir / GENERATED_DIR).resolve()
    problems: list[Problem] = []
    spec_docs: dict[Path, Document] = {}
    checked: list[str] = []
    for path in targets:
        doc, found = load_document(path)
        problems += found
        checked.append(doc.display if doc else path.as_posix())
        if doc is None:
            continue
        if generated_root in path.resolve().parents:
            problems += _generated_problems(doc)
        else:
            spec_docs[path.resolve()] = doc
    # Specs not named on the command line still take part in pair rules (a pre-commit run passes a subset).
    for path in spec_paths(env_dir) if env_dir.is_dir() else []:
        if path.resolve() not in spec_docs:
            doc, found = load_document(path)
            if doc is not None:
                spec_docs[path.resolve()] = doc
    if spec_docs:
        problems += validate_specs(list(spec_docs.values())).problems
    problems = sorted(set(problems))
    if any(p.severity == "error" for p in problems):
        raise ValidationFailed(problems)
    return ValidateResult(checked, problems)


def _generated_problems(doc: Document) -> list[Problem]:
    if doc.path.parent.name == "patches":
        found = schema_problems(doc.data, "configmap-patch", doc.display)
        config = (
            doc.data.get("metadata", {}).get("annotations", {}).get("config") if isinstance(doc.data, dict) else None
        )
        if isinstance(config, str):
            found += config_annotation_problems(config, doc.display, "$.metadata.annotations.config")
        return found
    if doc.path.name == "values.yaml":
        return schema_problems(doc.data, "values", doc.display)
    if doc.path.parent.name == "dependents":
        return dependent_document_problems(doc.data, doc.display)
    return [Problem(doc.display, "$", "unexpected file in generated/ (rolegen writes values.yaml, patches/*.yaml and "
                    "dependents/*.yaml)")]

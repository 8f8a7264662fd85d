"""The environments directory as a whole: every spec loaded and validated together (pair rules need both)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rolegen.errors import Problem, UsageError, ValidationFailed
from rolegen.offline.load import Document, display_name, load_document, parse_yaml, spec_paths
from rolegen.offline.spec import Spec
from rolegen.offline.validate import SpecSet, validate_specs


@dataclass(frozen=True)
class Workspace:
    env_dir: Path
    docs: list[Document]
    spec_set: SpecSet

    @property
    def specs(self) -> dict[str, Spec]:
        return self.spec_set.specs

    def spec_ref(self, env: str) -> str:
        """How generated headers name a spec: stable whatever the cwd is."""
        return f"{self.env_dir.resolve().name}/{env}.yaml"

    def select(self, envs: list[str], all_envs: bool) -> list[str]:
        if all_envs and envs:
            raise UsageError("--env and --all are mutually exclusive")
        if all_envs:
            return sorted(self.specs)
        if not envs:
            raise UsageError("name an environment with --env ENV, or use --all")
        check_known(self.env_dir, envs, [d.path.stem for d in self.docs])
        return sorted(set(envs))


def check_known(env_dir: Path, envs: list[str], known: list[str]) -> None:
    """Refuse environment names with no spec file, naming the ones that exist."""
    unknown = [e for e in envs if e not in known]
    if unknown:
        raise UsageError(
            f"unknown environment(s): {', '.join(unknown)}",
            hint=f"known: {', '.join(sorted(known)) or '(none)'} (files {display_name(env_dir)}/<env>.yaml)",
        )


def load_workspace(env_dir: Path, overrides: dict[Path, str] | None = None) -> Workspace:
    """Load and validate every spec; `overrides` replaces a file's text (an edit not yet written).

    Raises ValidationFailed with every error (warnings ride along on the result).
    """
    overrides = overrides or {}
    docs: list[Document] = []
    problems: list[Problem] = []
    for path in spec_paths(env_dir):
        if path in overrides:
            display = display_name(path)
            data, found = parse_yaml(overrides[path], display)
            doc = None if found else Document(path, display, data)
        else:
            doc, found = load_document(path)
        problems += found
        if doc is not None:
            docs.append(doc)
    spec_set = validate_specs(docs)
    problems += spec_set.problems
    if any(p.severity == "error" for p in problems):
        raise ValidationFailed(problems)
    return Workspace(env_dir, docs, spec_set)

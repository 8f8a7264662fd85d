"""`rolegen render`: specs → generated values and patches, written only where they differ."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolegen.errors import Problem, UsageError
from rolegen.offline import generated, output
from rolegen.offline.generated import StaleOutput, declare_role
from rolegen.offline.render import Rendered, render, reseed_document
from rolegen.offline.spec import ROLE_ALIASES
from rolegen.offline.workspace import Workspace, load_workspace
from rolegen.results import text_lines


@dataclass
class RenderResult:
    rendered: list[Rendered]
    changes: list[output.Change] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    role_change: tuple[str, str, str] | None = None  # (environment, old role, new role)
    text: str = ""  # what --stdout / --reseed print

    def lines(self) -> list[str]:
        """The --stdout / --reseed documents as they are, else the role change and each file's status."""
        if self.text:
            return text_lines(self.text)
        out = []
        if self.role_change:
            env, old, new = self.role_change
            out.append(f"{env}: role {old} -> {new}" if old != new else f"{env}: role already {new}")
        out += [f"{change.status:9} {change.display}" for change in self.changes]
        if self.changes and all(c.status == "identical" for c in self.changes):
            out.append("Not changed")
        return out

    def as_dict(self) -> Any:
        """The rendered data: one environment's object, or a list of them."""
        data = [r.as_dict() for r in self.rendered]
        return data[0] if len(data) == 1 else data


@dataclass(frozen=True)
class RenderOptions:
    envs: list[str] = field(default_factory=list)
    all_envs: bool = False
    role: str | None = None
    check: bool = False
    stdout: bool = False
    reseed: bool = False
    write: bool = True  # False: only compute (e.g. -f json)


def run(env_dir: Path, opts: RenderOptions) -> RenderResult:
    _check_combination(opts)
    role_change: tuple[str, str, str] | None = None
    overrides: dict[Path, str] = {}
    if opts.role is not None:
        ws, overrides, role_change = declare_role(env_dir, opts.envs[0], ROLE_ALIASES[opts.role])
    else:
        ws = load_workspace(env_dir)
    envs = ws.select(opts.envs, opts.all_envs)
    rendered = [render(ws.specs[e]) for e in envs]
    result = RenderResult(rendered, warnings=ws.spec_set.problems, role_change=role_change)
    if opts.reseed:
        result.text = "---\n".join(reseed_document(ws.specs[e], ws.spec_ref(e)) for e in envs)
        return result
    changes = generated.changes(ws, rendered)
    result.changes = changes
    if opts.check:
        stale = [c for c in changes if c.status != "identical"]
        if stale:
            raise StaleOutput(stale)
        return result
    if opts.stdout:
        result.text = "---\n".join(c.new for c in changes if c.new is not None)
        return result
    if opts.write:
        generated.write(overrides, changes)
    return result


def _check_combination(opts: RenderOptions) -> None:
    if opts.role is not None:
        if opts.all_envs or len(opts.envs) != 1:
            raise UsageError("--role changes one environment: use it with exactly one --env")
        if opts.role not in ROLE_ALIASES:
            raise UsageError(f"unknown role {opts.role!r}", hint="roles: leader, standby-leader (alias: standby)")
        if opts.check or opts.reseed:
            raise UsageError("--role cannot be combined with --check or --reseed")
    if opts.check and (opts.stdout or opts.reseed):
        raise UsageError("--check cannot be combined with --stdout or --reseed")


__all__ = ["RenderOptions", "RenderResult", "StaleOutput", "Workspace", "run"]

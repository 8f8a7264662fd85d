"""`rolegen render`: specs → generated values and patches, written only where they differ."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rolegen import output, yamlio
from rolegen.errors import Problem, RolegenError, UsageError, ValidationFailed
from rolegen.load import GENERATED_DIR, display_name, spec_paths
from rolegen.render import Rendered, output_files, render, reseed_document
from rolegen.spec import ROLE_ALIASES, Role
from rolegen.spec_edit import get_role, set_role
from rolegen.workspace import Workspace, check_known, load_workspace


class StaleOutput(RolegenError):
    """`render --check` found committed output that differs from a fresh render."""

    def __init__(self, changes: list[output.Change]) -> None:
        self.changes = changes
        names = ", ".join(c.display for c in changes)
        super().__init__(f"{len(changes)} generated file(s) stale: {names}", hint="run: rolegen render --all")


@dataclass
class RenderResult:
    rendered: list[Rendered]
    changes: list[output.Change] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    role_change: tuple[str, str, str] | None = None  # (environment, old role, new role)
    text: str = ""  # what --stdout / --reseed print


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
        ws, overrides, role_change = _declare_role(env_dir, opts.envs[0], ROLE_ALIASES[opts.role])
    else:
        ws = load_workspace(env_dir)
    envs = ws.select(opts.envs, opts.all_envs)
    rendered = [render(ws.specs[e]) for e in envs]
    result = RenderResult(rendered, warnings=ws.spec_set.problems, role_change=role_change)
    if opts.reseed:
        result.text = "---\n".join(reseed_document(ws.specs[e], ws.spec_ref(e)) for e in envs)
        return result
    files: dict[str, str] = {}
    for r in rendered:
        files.update(output_files(ws.specs[r.environment], r, ws.spec_ref(r.environment)))
    changes = output.plan(env_dir, files, [f"{GENERATED_DIR}/{e}" for e in envs], ws.env_dir.resolve().name)
    result.changes = changes
    if opts.check:
        stale = [c for c in changes if c.status != "identical"]
        if stale:
            raise StaleOutput(stale)
        return result
    if opts.stdout:
        result.text = "---\n".join(files[k] for k in sorted(files))
        return result
    if opts.write:
        for path, text in overrides.items():
            if path.read_text(encoding="utf-8") != text:
                output.atomic_write(path, text)
        output.write(changes)
    return result


def _declare_role(env_dir: Path, env: str, role: Role) -> tuple[Workspace, dict[Path, str], tuple[str, str, str]]:
    """The workspace as it will be once `env`'s spec declares `role` (one load, nothing written yet)."""
    path = env_dir / f"{env}.yaml"
    if not path.is_file():
        check_known(env_dir, [env], [p.stem for p in spec_paths(env_dir)])
    text = path.read_text(encoding="utf-8")
    overrides = {path: set_role(text, role, path.as_posix())}
    try:
        ws = load_workspace(env_dir, overrides)
    except ValidationFailed as exc:
        # The role itself is valid, so an error at this file's $.role is the pair rule: two leaders.
        if not any(p.file == display_name(path) and p.path == "$.role" for p in exc.errors):
            raise
        peer = yamlio.load(overrides[path])["peer"]["environment"]  # the spec validated, or no pair rule ran
        raise ValidationFailed(
            exc.problems,
            hint=f"{env} cannot become leader while {peer} is: demote {peer} first "
            f"(rolegen render --env {peer} --role standby-leader), or run rolegen switchover --to {env}",
        ) from None
    return ws, overrides, (env, get_role(text, path.as_posix()), role)


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

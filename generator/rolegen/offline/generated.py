"""The generated files of an environments directory, on disk, and the one writer of specs' roles.

Compare a fresh render with what disk holds (`changes`, `check_current`), write only what differs (`write`,
`regenerate`), and record a role in a spec: its `role:` line (spec_edit, comments kept) and then its generated
files (`record_role`). `rolegen render`, apply's stale check, the role procedures and the lab all come here, so
nothing below the CLI verbs calls a verb.
"""

from __future__ import annotations

from pathlib import Path

from rolegen.errors import RolegenError, ValidationFailed
from rolegen.offline import output, yamlio
from rolegen.offline.load import GENERATED_DIR, display_name, spec_paths
from rolegen.offline.render import Rendered, output_files, render
from rolegen.offline.spec import Role
from rolegen.offline.spec_edit import get_role, set_role
from rolegen.offline.workspace import Workspace, check_known, load_workspace


class StaleOutput(RolegenError):
    """Committed generated files differ from a fresh render (`render --check`, apply, switchover)."""

    def __init__(self, changes: list[output.Change]) -> None:
        self.changes = changes
        names = ", ".join(c.display for c in changes)
        super().__init__(f"{len(changes)} generated file(s) stale: {names}", hint="run: rolegen render --all")


def changes(ws: Workspace, rendered: list[Rendered]) -> list[output.Change]:
    """What writing `rendered` would change on disk (files of those environments no longer rendered: removed)."""
    files: dict[str, str] = {}
    for r in rendered:
        files.update(output_files(ws.specs[r.environment], r, ws.spec_ref(r.environment)))
    owned = [f"{GENERATED_DIR}/{r.environment}" for r in rendered]
    return output.plan(ws.env_dir, files, owned, ws.env_dir.resolve().name)


def write(overrides: dict[Path, str], found: list[output.Change]) -> None:
    """Write the edited specs (`overrides`, path -> text) and the changed generated files; nothing identical."""
    for path, text in overrides.items():
        if path.read_text(encoding="utf-8") != text:
            output.atomic_write(path, text)
    output.write(found)


def check_current(env_dir: Path, envs: list[str]) -> None:
    """Raise StaleOutput (carrying the diff) unless the generated files of `envs` match their specs."""
    ws = load_workspace(env_dir)
    stale = [c for c in changes(ws, [render(ws.specs[e]) for e in ws.select(envs, False)]) if c.status != "identical"]
    if stale:
        raise StaleOutput(stale)


def regenerate(env_dir: Path) -> list[output.Change]:
    """Render every environment and write what differs; returns every file compared."""
    ws = load_workspace(env_dir)
    found = changes(ws, [render(ws.specs[e]) for e in ws.select([], True)])
    write({}, found)
    return found


def declare_role(env_dir: Path, env: str, role: Role) -> tuple[Workspace, dict[Path, str], tuple[str, str, str]]:
    """The workspace as it will be once `env`'s spec declares `role` (one load, nothing written yet): the
    workspace, the edited spec text by path, and (environment, old role, new role)."""
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


def record_role(env_dir: Path, env: str, role: Role) -> list[output.Change]:
    """Make `env`'s spec declare `role` and regenerate its files (refused if it would make two leaders);
    returns the generated files compared, so a caller can say what changed."""
    ws, overrides, _ = declare_role(env_dir, env, role)
    found = changes(ws, [render(ws.specs[e]) for e in ws.select([env], False)])
    write(overrides, found)
    return found

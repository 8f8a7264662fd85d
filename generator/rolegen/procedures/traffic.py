"""Traffic hooks (README "Applications"): the command a site's spec declares for a phase of a role change, run on
the machine that runs rolegen, without a shell, in the directory that holds environments/, with variables that
name the sites and roles, its output in the run's log, killed (with what it started) once its timeout is up.

What a failure does is the procedure's to say (rolegen.procedures.dependent_steps): before the demotion it stops
the role change, nothing changed; once the demotion is written it is a warning, since a database left without a
leader for a ticket system or a DNS API would be the worse outage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from rolegen.errors import RolegenError
from rolegen.offline.dependents import Hook
from rolegen.offline.spec import Spec


class HookFailed(RolegenError):
    """A hook exited non-zero, could not start, or ran out of time."""


def hook_env(verb: str, phase: str, site: Spec, *, old: str, new: str) -> dict[str, str]:
    """The variables a hook gets (beside rolegen's own environment): which role change, which phase, whose hook."""
    role = "standby-leader" if phase.endswith("_demote") else "leader"
    return {
        "ROLEGEN_VERB": verb,
        "ROLEGEN_PHASE": phase,
        "ROLEGEN_SITE": site.environment,  # whose hook this is: the demoted site, or the promoted one
        "ROLEGEN_SITE_ROLE": role,  # the role that site is taking
        "ROLEGEN_CONTEXT": site.context or "",
        "ROLEGEN_NAMESPACE": site.namespace,
        "ROLEGEN_OLD_LEADER": old,
        "ROLEGEN_NEW_LEADER": new,
    }


def run_hook(hook: Hook, env: dict[str, str], cwd: Path, log: Callable[[str], None]) -> None:
    """Run `hook`; each line it prints (stdout and stderr) goes to `log` as `   | line`. Raises HookFailed."""
    try:
        proc = subprocess.Popen(list(hook.command), cwd=cwd, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                start_new_session=True)  # its own process group: a timeout kills all it started
    except OSError as exc:
        raise HookFailed(f"{hook.phase} hook could not start ({hook.shown}): {exc.strerror or exc}") from None
    last: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log(f"   | {line.rstrip()}")
            last[:] = [line.rstrip()]

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    with proc:  # closes its output pipe, whatever happens
        try:
            code = proc.wait(timeout=hook.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            reader.join(timeout=1)
            raise HookFailed(f"{hook.phase} hook ran out of its {hook.timeout:g}s ({hook.shown}); it was "
                             "killed") from None
        reader.join(timeout=1)
    if code != 0:
        said = f": {last[0]}" if last and last[0] else ""
        raise HookFailed(f"{hook.phase} hook exited {code} ({hook.shown}){said}")

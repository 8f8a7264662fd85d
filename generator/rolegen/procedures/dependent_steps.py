"""The role changes' steps for the applications (README "Applications"): quiesce the demoted site's dependents
before its demotion, bring the promoted site's up after its promotion, and run the sites' traffic hooks at their
phases. Like the witness step, each is in a runbook only when the specs declare what it runs; without dependents
and hooks the runbooks, and their numbering, are what they were.

A dependent that does not reach its shape within its timeout stops the role change where it is, saying what it
left and the command that goes on (rolegen.cluster.dependents.reach raises it). A `before_demote` hook that fails
stops it too (nothing was changed); a hook of a later phase is a warning: the demotion is written by then, and a
role change held up by a ticket system or a DNS API would leave the pair without a leader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rolegen.cluster.dependents import DependentNotReady, reach
from rolegen.errors import RolegenError
from rolegen.offline.spec import Spec
from rolegen.procedures.base import Pair
from rolegen.procedures.steps import Step
from rolegen.procedures.traffic import HookFailed, hook_env, run_hook

C = TypeVar("C")
STANDBY, LEADER = "standby-leader", "leader"


def _targets(site: Spec, role: str) -> str:
    return "\n".join(f"- {d.name}: {d.target}, {_shape(d.helm, d.replicas.get(role), role)}" for d in site.dependents)


def _shape(helm: bool, replicas: int | None, role: str) -> str:
    return f"its {role} values" if helm else f"{replicas} replica(s)"


def quiesce(pair: Pair, site: Spec, applies: Callable[[C], bool], *, stopped: str, rerun: str) -> list[Step[C]]:
    """Give `site`'s dependents their standby-leader shape and wait for it (none declared: no step). `stopped`:
    what a dependent that does not get there leaves, as the error says it; `rerun`: the command that goes on."""
    if not site.dependents:
        return []
    env = site.environment
    back = "" if site.role == STANDBY else (f"; or give {env}'s dependents back their leader shape: rolegen apply "
                                            f"--env {env}")

    def run(_: C) -> None:
        _reach_all(pair, site, STANDBY, stopped=stopped,
                   hint=f"fix it (rolegen status shows the dependents), then re-run {rerun}{back}")
        pair.mark("dependents_quiesced")

    detail = (f"Give {env}'s dependents their standby-leader shape, each waited for (its timeout):\n"
              f"{_targets(site, STANDBY)}\nScaled to zero means no Pod left, so nothing of them writes. One that "
              f"does not get there\nstops here: {stopped}.")
    return [Step(f"Quiesce {env}'s dependents", detail, run, applies)]


def bring_up(pair: Pair, applies: Callable[[C], bool], *, rerun: str) -> list[Step[C]]:
    """Give the promoted site's dependents their leader shape and wait until they run it (none: no step)."""
    site = pair.to
    if not site.dependents:
        return []
    env = site.environment
    stopped = f"{env} leads (its promotion verified); the roles are not recorded yet"

    def run(_: C) -> None:
        _reach_all(pair, site, LEADER, stopped=stopped,
                   hint=f"fix it (rolegen status shows the dependents), then re-run {rerun}: it resumes after the "
                   "promotion and brings them up")
        pair.mark("dependents_up")

    detail = (f"Give {env}'s dependents their leader shape, each waited for until rolled out and ready (its "
              f"timeout):\n{_targets(site, LEADER)}\nOne that does not get there stops here: {stopped};\n"
              f"{rerun} resumes.")
    return [Step(f"Bring up {env}'s dependents", detail, run, applies)]


def hook(pair: Pair, verb: str, phase: str, applies: Callable[[C], bool]) -> list[Step[C]]:
    """The step of `phase`'s hook: the demoted site's (`*_demote`) or the promoted one's (`*_promote`); none when
    that spec declares no such hook."""
    site = pair.other if phase.endswith("_demote") else pair.to
    declared = site.hooks.get(phase)
    if declared is None:
        return []
    env = site.environment
    stops = phase == "before_demote"
    then = ("A failure (non-zero exit, or its timeout) stops here: nothing was changed." if stops else
            "A failure is a warning, and the role change goes on: the demotion is written by then.")

    def run(_: C) -> None:
        variables = hook_env(verb, phase, site, old=pair.other.environment, new=pair.to.environment)
        try:
            run_hook(declared, variables, pair.env_dir.resolve().parent, pair.log)
        except HookFailed as exc:
            if stops:
                raise RolegenError(f"{env}'s {exc.message}; nothing was changed",
                                   hint=f"fix it, then re-run rolegen {verb} --to {pair.to.environment}") from None
            pair.log(f"   warning: {env}'s {exc.message}; the {verb} goes on: run it by hand once it can work")
        pair.mark(phase)

    detail = (f"{declared.shown} (timeout {declared.timeout:g}s), in the directory that holds environments/;\n"
              f"ROLEGEN_* variables name the sites and roles, its output goes to the log.\n{then}")
    return [Step(f"Run {env}'s {phase} hook", detail, run, applies)]


def restore(pair: Pair, site: Spec) -> str | None:
    """A rolled-back switchover: `site` leads again, its dependents get their leader shape back and its
    `after_promote` hook runs. Returns what failed (None: all done); a rollback goes on regardless."""
    failed: list[str] = []
    if site.dependents:
        try:
            _reach_all(pair, site, LEADER, stopped="", hint=None)
        except RolegenError as exc:
            failed.append(f"its dependents did not come back ({exc.message}): rolegen apply --env {site.environment}")
    declared = site.hooks.get("after_promote")
    if declared is not None:
        variables = hook_env("rollback", "after_promote", site, old=pair.to.environment, new=site.environment)
        try:
            run_hook(declared, variables, pair.env_dir.resolve().parent, pair.log)
        except HookFailed as exc:
            failed.append(f"its {exc.message}")
    return "; ".join(failed) or None


def _reach_all(pair: Pair, site: Spec, role: str, *, stopped: str, hint: str | None) -> None:
    cluster, done = pair.cluster(site), list[str]()
    for dep in site.dependents:
        pair.guard(site)
        try:
            reach(cluster, site.namespace, dep, role, pair.log)
        except DependentNotReady as exc:
            before = f" ({', '.join(done)} did)" if done else ""
            where = f"; {stopped}" if stopped else ""
            raise RolegenError(f"{site.environment}'s dependent {exc.message}{before}{where}", hint=hint) from None
        done.append(dep.name)

"""The dependents' and hooks' rules of validate (README "Applications"): what the schema cannot say about one spec
(unique names and targets, never the database's own release, no credential in a hook's command line), and what
the two specs of a pair must share (the same dependents: either site may lead, and each must have what the
other would quiesce)."""

from __future__ import annotations

import re

from rolegen.errors import Problem
from rolegen.offline.dependents import Dependent
from rolegen.offline.spec import Spec

# `--token=abc`, `password=abc`, `Authorization: Bearer abc`: a credential spelled out on a command line lands in
# Git (the spec) and in the run's log. A hook reads it from its own environment or a file instead.
_CREDENTIAL_ARG = re.compile(r"(?i)(passw(or)?d|secret|token|api[_-]?key)\s*[=:]\s*\S|^bearer\s+\S|authorization:")


def spec_problems(spec: Spec) -> list[Problem]:
    src = spec.source
    problems: list[Problem] = []
    names: dict[str, int] = {}
    targets: dict[tuple[str, str], int] = {}
    for index, dep in enumerate(spec.dependents):
        at = f"$.dependents[{index}]"
        if dep.name in names:
            problems.append(Problem(src, f"{at}.name", f"dependent {dep.name!r} is declared twice "
                                    f"(first at $.dependents[{names[dep.name]}]); names are unique"))
        names.setdefault(dep.name, index)
        key = _target_key(dep)
        if key in targets:
            problems.append(Problem(src, f"{at}.{'release' if dep.helm else 'workload'}", (
                f"{dep.target} is already dependent {spec.dependents[targets[key]].name!r}: two entries would "
                "fight over its shape")))
        targets.setdefault(key, index)
        if dep.helm and dep.release == spec.release:
            problems.append(Problem(src, f"{at}.release", (
                f"{dep.release!r} is the database's own release (helm.release): a dependent's values would replace "
                "the database's; name the application's release")))
        if not dep.helm and dep.replicas.get("leader") == 0:
            problems.append(Problem(src, f"{at}.replicas.leader", (
                f"0: {dep.target} runs at neither site while this one leads; was standby-leader meant?"), "warning"))
    for phase, hook in sorted(spec.hooks.items()):
        for index, arg in enumerate(hook.command):
            if _CREDENTIAL_ARG.search(arg):
                problems.append(Problem(src, f"$.hooks.{phase}.command[{index}]", (
                    "looks like a credential: a hook's command line is in the spec and in the run's log; let the "
                    "command read it from its own environment or a file")))
    return problems


def pair_problems(a: Spec, b: Spec) -> list[Problem]:
    """The same dependents (name, kind, target) on both sites; a chart or version that differs is a warning (a
    rollout site by site passes through it)."""
    problems: list[Problem] = []
    by_a = {d.name: (i, d) for i, d in enumerate(a.dependents)}
    by_b = {d.name: (i, d) for i, d in enumerate(b.dependents)}
    for spec, mine, theirs, other in ((a, by_a, by_b, b), (b, by_b, by_a, a)):
        for name, (index, _) in sorted(mine.items()):
            if name not in theirs:
                problems.append(Problem(spec.source, f"$.dependents[{index}].name", (
                    f"dependent {name!r} is not declared in {other.source or other.environment}: a pair has the same "
                    "dependents on both sites (either may lead, and the other quiesces what it declares)")))
    for name in sorted(set(by_a) & set(by_b)):
        (ia, da), (ib, db) = by_a[name], by_b[name]
        for path, va, vb, severity in (
            ("kind", da.kind, db.kind, "error"),
            ("release" if da.helm else "workload", _target_key(da)[1], _target_key(db)[1], "error"),
            ("chart", da.chart, db.chart, "warning"),
            ("version", da.version, db.version, "warning"),
        ):
            if va == vb or (path in ("chart", "version") and da.kind != db.kind):
                continue
            message = (f"dependent {name!r}: {path} differs between {a.environment} ({va!r}) and {b.environment} "
                       f"({vb!r}); " + ("the pair runs the same application at both sites" if severity == "error"
                                        else "fine during a rollout site by site, not for long"))
            problems += [Problem(a.source, f"$.dependents[{ia}].{path}", message, severity),
                         Problem(b.source, f"$.dependents[{ib}].{path}", message, severity)]
            if path == "kind":
                break
    return problems


def _target_key(dep: Dependent) -> tuple[str, str]:
    return (dep.kind, dep.release if dep.helm else dep.workload)

"""The witness rules of validate (`witness:`, docs/witness.md): one spec's block, and what the two specs of a pair
must agree on. What the schema cannot say: the timers' order (rolegen.witness.rules.Timers.problems), which
fields a mode needs, and that the witness is a third site, not one of the two.

What rolegen cannot tell offline: whether two context names reach two different API servers. It checks the names.
"""

from __future__ import annotations

from rolegen.errors import Problem
from rolegen.offline import sync
from rolegen.offline.spec import TIMER_NAMES, Spec, Witness

_SAME = "the pair shares one witness: give both specs the same witness block (each may name its own secret)"


def spec_problems(spec: Spec) -> list[Problem]:
    """Rules of one spec's witness block."""
    witness = spec.witness
    if witness is None:
        return []
    src = spec.source
    problems = [Problem(src, _timer_path(message), message) for message in witness.timers.problems()]
    if witness.replication == "sync" and witness.lag_limit is not None:
        problems.append(Problem(src, "$.witness.lag_limit", (
            "means nothing with replication sync (no commit the leader acknowledged is missing on the standby): "
            "remove it")))
    if not witness.automatic:
        if witness.replication == "sync":
            problems.append(Problem(src, "$.witness.replication", (
                "sync takes effect with mode automatic only (its leader guard drops synchronous commit when the "
                "standby is gone, after saying so in the witness Lease); with mode manual nothing renders it"),
                "warning"))
        return problems
    if witness.replication == "async" and witness.lag_limit is None:
        problems.append(Problem(src, "$.witness.lag_limit", (
            "required with mode automatic and replication async: the most WAL (bytes) the standby may lack for an "
            "automatic failover, the loss it accepts; beyond it the failover stays manual")))
    if witness.secret is None:
        problems.append(Problem(src, "$.witness.secret", (
            "required with mode automatic: the Secret (a name) holding the credentials the site's guard reaches "
            "the witness with")))
    if witness.peer_guard is None:
        problems.append(Problem(src, "$.witness.peer_guard", (
            "not set: this site's leader guard holds only the witness Lease, so a witness outage alone fences it "
            "(set the peer's `rolegen guard` address through the tunnel)"), "warning"))
    problems.append(Problem(src, "$.witness.mode", (
        "automatic failover is partial (docs/witness.md, \"Not built yet\"): the lab drills of its partition matrix "
        "have not run ten times each yet; the standby guard's Pod has run drills on the lab only, in no real "
        "cluster"), "warning"))
    return problems


def _timer_path(message: str) -> str:
    """Timers.problems() names the timer it faults first: `renew_every (5s) must ...`, `margin must ...`."""
    name = message.split(" ", 1)[0]
    return f"$.witness.timers.{name}" if name in TIMER_NAMES else "$.witness.timers"


def pair_problems(a: Spec, b: Spec) -> list[Problem]:
    """Both specs declare the witness or neither, the same one (the secret aside), at a third site."""
    if a.witness is None and b.witness is None:
        return []
    if a.witness is None or b.witness is None:
        has, lacks = (a, b) if a.witness is not None else (b, a)
        message = (f"witness is declared in {has.source or has.environment} and not in "
                   f"{lacks.source or lacks.environment}; {_SAME}, or remove it from both")
        return [Problem(s.source, "$.witness", message) for s in (a, b)]
    problems: list[Problem] = []
    for path, va, vb in _differences(a.witness, b.witness):
        message = f"witness.{path} differs between {a.environment} ({va}) and {b.environment} ({vb}); {_SAME}"
        problems += [Problem(s.source, f"$.witness.{path}", message) for s in (a, b)]
    for spec in (a, b):
        problems += _third_site(spec, (a, b))
    return problems + sync.pair_problems(a, b)


def _differences(wa: Witness, wb: Witness) -> list[tuple[str, str, str]]:
    """(path below witness, a's value, b's value) for every field the pair must share."""
    fields = [
        *((path, repr(va), repr(vb)) for path, va, vb in (
            ("mode", wa.mode, wb.mode),
            ("replication", wa.replication, wb.replication),
            ("kubernetes.context", wa.context, wb.context),
            ("kubernetes.namespace", wa.namespace, wb.namespace),
            ("lease", wa.lease, wb.lease),
        )),
        *((f"timers.{n}", f"{getattr(wa.timers, n):g}s", f"{getattr(wb.timers, n):g}s") for n in TIMER_NAMES),
        ("lag_limit", _bytes(wa.lag_limit), _bytes(wb.lag_limit)),
    ]
    return [(path, va, vb) for path, va, vb in fields if va != vb]


def _bytes(limit: int | None) -> str:
    return "none" if limit is None else f"{limit} bytes"


def _third_site(spec: Spec, sites: tuple[Spec, Spec]) -> list[Problem]:
    """The witness's context is neither site's: a witness inside one of the two sites is no third site."""
    witness = spec.witness
    if witness is None:
        return []
    problems = []
    for site in sites:
        if site.context is None:
            problems.append(Problem(spec.source, "$.witness.kubernetes.context", (
                f"{site.environment} has no kubernetes.context (kubectl's current context): whether the witness "
                "is at a third site cannot be checked"), "warning"))
        elif site.context == witness.context:
            problems.append(Problem(spec.source, "$.witness.kubernetes.context", (
                f"{witness.context!r} is {site.environment}'s own context: a witness in one of the two sites is no "
                "third site; name the context of a cluster at a third location")))
    return problems

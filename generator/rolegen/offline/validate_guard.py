"""The rules of `witness.guard:` (this site's `rolegen guard` as the chart's Deployment) that the schema cannot say:
it runs only with mode automatic, and the port the peer asks it on is the port it listens on."""

from __future__ import annotations

from rolegen.errors import Problem
from rolegen.offline.spec import Spec


def spec_problems(spec: Spec) -> list[Problem]:
    witness = spec.witness
    if witness is None or witness.guard is None or witness.automatic:
        return []
    return [Problem(spec.source, "$.witness.guard", (
        "needs mode automatic: `rolegen guard` runs only for an automatic witness, so nothing would be deployed; "
        "set witness.mode: automatic, or remove witness.guard"))]


def pair_problems(a: Spec, b: Spec) -> list[Problem]:
    """Each site's `peer_guard.port` against the port its peer's chart-run guard listens on: the claim keeps the
    port (overrideServicePort), so a different one reaches nothing and the leader holds only the witness Lease."""
    problems = []
    for site, peer in ((a, b), (b, a)):
        asks = site.witness.peer_guard if site.witness is not None else None
        listens = peer.witness.guard if peer.witness is not None else None
        if asks is None or listens is None or asks[1] == listens.port:
            continue
        problems.append(Problem(site.source, "$.witness.peer_guard.port", (
            f"peer_guard.port {asks[1]}, but {peer.environment}'s guard listens on {listens.port} (its "
            "witness.guard.port) and the TransportServerClaim keeps the port: promises would reach nothing"),
            "warning"))
    return problems

"""Moving the witness Lease to the site a role change promotes, before that promotion is written: in automatic mode
the promoted site's Patroni runs `pre_promote` (the chart's witness guard), which refuses a promotion unless it can
renew the Lease for its own site (docs/witness.md).

One look: read the Lease. Held by the target already (the standby's guard took it, or an earlier run's write whose
answer was lost was applied): nothing to write. Held by the old site, by nobody, or absent: take it for the target
with the resourceVersion read (create it held by the target if absent). A Conflict (its holder renewed meanwhile)
or a witness out of reach is looked at again, within the wait (rolegen.cluster.wait.poll); running out raises
WitnessNotMoved, a WaitTimedOut. Any other failed read or write (forbidden, a server error) is raised as it is: it
is never "go ahead". A Lease held by a name that is neither site of the pair is refused: it is not this pair's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rolegen.cluster.kubectl import AlreadyExists, ClusterUnreachable, Conflict
from rolegen.cluster.wait import poll
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.witness.lease import WitnessLease, WitnessView


class WitnessNotMoved(WaitTimedOut):
    """The witness Lease could not be moved within the wait (the witness out of reach, or its holder renewing at
    every look): nothing was promoted. A WaitTimedOut: the one error a procedure may turn into a rollback."""


class ForeignHolder(RolegenError):
    """The Lease names a holder that is neither site of the pair."""


@dataclass
class LeaseMove:
    """What a move saw and did: `before`, the first read (None: never read); `after`, the Lease once the target's
    (None: not moved); `wrote`: "took" or "created" (None: it was the target's already, or not moved); `why`: the
    last reason to look again."""

    to: str
    before: WitnessView | None = None
    after: WitnessView | None = None
    wrote: str | None = None
    why: str | None = None
    _said: set[str] = field(default_factory=set, repr=False)

    @property
    def done(self) -> bool:
        return self.after is not None

    def line(self) -> str:
        """The log line of a move that is done."""
        before = self.before.holder if self.before is not None else None
        if self.wrote == "created":
            return f"witness lease created, held by {self.to}"
        if self.wrote is None and before == self.to:
            return f"witness lease already {self.to}'s: nothing to do"
        return f"witness lease moved: {before or 'nobody'} -> {self.to}"

    def record(self, error: str | None = None) -> dict[str, Any]:
        """The holder before and after, as the promotion record keeps it (`error`: why it was not moved)."""
        return {"before": self.before.holder if self.before is not None else None,
                "after": self.after.holder if self.after is not None else None,
                **({"error": error} if error else {})}


def move_lease(lease: WitnessLease, to: str, sites: tuple[str, str], *, timeout: float, every: float = 0.5,
               guard: Callable[[], None] = lambda: None, log: Callable[[str], None] = lambda _: None) -> LeaseMove:
    """Make `to` (one of `sites`) the Lease's holder within `timeout`; `guard` runs before each write (the role-change
    lease's check), `log` gets each new reason to look again once. Raises WitnessNotMoved when time runs out."""
    move = LeaseMove(to)

    def look() -> LeaseMove:
        try:
            seen = lease.read()
        except ClusterUnreachable as exc:
            return _again(move, f"the witness did not answer: {exc.message}", log)
        if move.before is None:
            move.before = seen
        if seen.holder == to:
            move.after = seen
            return move
        if seen.holder is not None and seen.holder not in sites:
            raise ForeignHolder(
                f"the witness lease {lease.name} is held by {seen.holder}, neither {sites[0]} nor {sites[1]}: "
                "not this pair's lease; nothing was moved",
                hint="check the specs' witness.lease (each pair needs a Lease of its own), then re-run")
        guard()
        try:
            if seen.version is None:
                lease.create(to)
                move.wrote = "created"
                move.after = WitnessView(to, None)
            else:
                move.after = lease.take(to, seen)
                move.wrote = "took"
        except Conflict:
            return _again(move, f"{seen.holder or 'nobody'}'s lease changed since it was read (renewed): read again",
                          log)
        except AlreadyExists:
            return _again(move, "the lease was created meanwhile: read again", log)
        except ClusterUnreachable as exc:  # a write whose answer was lost may have been applied: the next read says
            return _again(move, f"the witness did not answer the write: {exc.message}", log)
        return move

    try:
        return poll(look, lambda m: m.done, timeout=timeout, every=every, what=f"the witness lease to move to {to}")
    except WaitTimedOut as exc:
        raise WitnessNotMoved(
            f"the witness lease {lease.name} was not moved to {to} within {timeout:.0f}s ({move.why})",
            hint="check the route to the witness (rolegen status shows it), then re-run",
            what=exc.what, last=move) from None


def _again(move: LeaseMove, why: str, log: Callable[[str], None]) -> LeaseMove:
    move.why = why
    if why not in move._said:
        move._said.add(why)
        log(f"   {why}")
    return move

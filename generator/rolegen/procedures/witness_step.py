"""The role changes' step "Move the witness lease to X" (rolegen.witness.move): switchover and failback (the
handover) and failover run it right before their promotion write. It is in a runbook only when the pair's specs
declare `witness:`; without one the runbooks, and their numbering, are what they were.

Mode automatic: the promoted site's `pre_promote` refuses a promotion unless it can renew the Lease for its site,
so a Lease not moved within the step's wait (--timeout) stops the role change before the promotion
(WitnessNotMoved, a WaitTimedOut: a switchover rolls back, a failover promotes nothing). Mode manual: nothing runs
`pre_promote`, the move is best effort: a witness out of reach is a warning, tried for at most MANUAL_TRIES
request timeouts, and the role change goes on. Any other failed read or write stops the role change where it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from rolegen.errors import RolegenError
from rolegen.offline.spec import Witness
from rolegen.procedures.base import Pair
from rolegen.procedures.steps import Step
from rolegen.witness.lease import WitnessLease
from rolegen.witness.move import ForeignHolder, LeaseMove, WitnessNotMoved, move_lease

C = TypeVar("C")
MANUAL_TRIES = 2  # request timeouts a best-effort move (mode manual, a rollback's) waits for the witness


def steps(pair: Pair, run: Callable[[C], None], applies: Callable[[C], bool], *, unmoved: str) -> list[Step[C]]:
    """The step, or none when the specs declare no witness. `unmoved`: what the procedure does when the Lease
    cannot be moved in automatic mode, as its runbook says it."""
    declared = _declared(pair)
    if declared is None:
        return []
    witness, _ = declared
    to, old = pair.to.environment, pair.other.environment
    where = f"{witness.lease} (context {witness.context}, namespace {witness.namespace})"
    if witness.automatic:
        then = (f"Mode automatic: {to}'s pre_promote (its witness guard) refuses a promotion unless it can renew\n"
                f"the Lease for {to}. Not moved within --timeout (witness out of reach, or its holder renewing):\n"
                f"{unmoved}.")
    else:
        then = ("Mode manual: nothing refuses the promotion, the move is best effort: a witness out of reach is a\n"
                "warning and the role change goes on.")
    detail = (f"Read the witness Lease {where}.\n"
              f"Held by {old}, by nobody or absent: take it for {to} with the resourceVersion read (create it held by\n"
              f"{to} if absent); a Conflict is read again. Already {to}'s (taken by its guard, or by an earlier run):\n"
              f"nothing to write. {then}")
    return [Step(f"Move the witness lease to {to}", detail, run, applies)]


def move(pair: Pair, timeout: float) -> None:
    """The step's body: move the Lease to the target and log what was done; the holder before and after goes to the
    promotion record (Pair.witness_record). Mode automatic: WitnessNotMoved is raised for the procedure to handle.
    Mode manual: it is a warning, and so is a Lease another pair holds (ForeignHolder: in mode automatic an error
    that stops the role change where it is)."""
    declared = _declared(pair)
    assert declared is not None, "the witness step runs only when the specs declare a witness"
    witness, lease = declared
    to = pair.to.environment
    wait = timeout if witness.automatic else min(timeout, MANUAL_TRIES * witness.timers.request_timeout)
    try:
        moved = move_lease(lease, to, (to, pair.other.environment), timeout=wait, guard=lambda: pair.guard(pair.to),
                           log=pair.log)
    except (WitnessNotMoved, ForeignHolder) as exc:
        if witness.automatic:
            raise
        pair.log(f"   warning: {exc.message}; mode manual: nothing refuses the promotion, it goes on. To move it "
                 f"by hand: {hand_move(witness, to)}")
        last = exc.last if isinstance(exc, WitnessNotMoved) else None
        pair.witness_record = (last if isinstance(last, LeaseMove) else LeaseMove(to)).record(exc.message)
        return
    pair.log(f"   {moved.line()}")
    pair.witness_record = moved.record()
    pair.mark("witness_moved")


def regain(pair: Pair) -> None:
    """Before a rolled-back handover promotes the old site again: the Lease back to it if a run moved it to the
    target (nothing to write if it is still the old site's, as when the move never happened). Best effort: a
    failure is a warning, since the rollback must go on (in automatic mode the old site's pre_promote then needs a
    promise from the peer's guard)."""
    declared = _declared(pair)
    if declared is None:
        return
    witness, lease = declared
    old = pair.other.environment
    try:
        moved = move_lease(lease, old, (old, pair.to.environment),
                           timeout=MANUAL_TRIES * witness.timers.request_timeout, guard=lambda: pair.guard(pair.other),
                           log=pair.log)
    except RolegenError as exc:
        pair.log(f"   warning: {exc.message}; {old}'s guard may refuse its promotion (mode {witness.mode}). Once the "
                 f"witness answers: {hand_move(witness, old)}")
        return
    pair.log(f"   {moved.line()}")


def hand_move(witness: Witness, holder: str) -> str:
    patch = json.dumps({"spec": {"holderIdentity": holder}}, separators=(",", ":"))
    return (f"kubectl --context {witness.context} -n {witness.namespace} patch lease {witness.lease} --type merge "
            f"-p '{patch}'")


def _declared(pair: Pair) -> tuple[Witness, WitnessLease] | None:
    """The pair's witness (both specs declare the same: validate's pair rules) and its Lease client."""
    if pair.to.witness is None or pair.witness is None:
        return None
    return pair.to.witness, pair.witness

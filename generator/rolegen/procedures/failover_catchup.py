"""A failover's catch-up: once the old site is fenced, how far the target must replay, and whether it got there.

While members of the old site run with their data, the target must replay the most the old site may hold (its
lock's optime or a member's own LSN): the LSN gate of a switchover. Members that crashed report less than they
hold while they replay their own WAL: the position counts only once it stopped moving over Patroni loops
(rules.Settling). Pods that report nothing yet are "not caught up": they come back with data nobody has seen.
The target's own members count too: its lock holder must hold what they report (`own_members`), since the
promotion is its.
"""

from __future__ import annotations

from rolegen.cluster.site_state import SiteState
from rolegen.errors import WaitTimedOut
from rolegen.procedures.base import Pair
from rolegen.procedures.rules import (
    Position,
    Settling,
    ahead_of_holder,
    final_position,
    gate_blocker,
    holder,
    lsn_text,
    replay_gap,
)
from rolegen.procedures.wake import Nudger


def catch_up(pair: Pair, old_state: SiteState, target_state: SiteState, *, wait_for: float,
             unattended: bool) -> tuple[Position | None, str | None]:
    """(the old site's final position as last seen, why the target has not replayed it: None once it has).
    Waits up to `wait_for`. `unattended` (the standby site's guard runs the failover): a target that receives
    nothing from the old site is not waited for (nothing more can arrive; the promotion replays what it got)."""
    to, old = pair.to, pair.other
    final = final_position(old_state)
    if final is None and not old_state.members:
        pair.log(f"   {old.environment} has no Pods and its lock records no position: nothing of it can be replayed")
        return None, None
    settling, first = Settling(), final
    settling.observe(old_state)
    seen: list[str | None] = [None]
    gap: list[int | None] = [None]
    last = [target_state]

    def caught_up() -> bool:
        target, now = pair.read_both()
        last[0] = target
        best = settling.observe(now) or first
        if best is None:
            seen[0] = f"no member of {old.environment} has reported a position yet"
            return False
        seen[0], gap[0] = gate_blocker(target, best), replay_gap(target, best)
        if seen[0] is None and not settling.settled(now):
            waiting = Settling.unreported(now)
            seen[0] = (f"{', '.join(waiting)} of {old.environment} not reported since restarting" if waiting
                       else f"{old.environment}'s position {lsn_text(best.lsn)} has not settled yet")
        return seen[0] is None

    blocker: str | None = None
    if unattended and not caught_up():
        if not receives(last[0]):
            # The guard's rule saw the target receive nothing, and it still does not: waiting (request_timeout,
            # 4 s of the 5 s the default timers leave the failover) cannot bring anything more.
            return settling.best or final, f"{seen[0]}, and {to.environment} receives nothing from {old.environment}"
    elif unattended:
        return settling.best or final, None
    # A member whose Pod remains comes back (the kubelet restarts it): wait for it up to `wait_for`. Only a site
    # without Pods has nothing more to say (the caller's `wait_for` is short then).
    try:
        pair.wait(f"{to.environment} to replay what {old.environment} holds", caught_up, wait_for, gap=lambda: gap[0])
    except WaitTimedOut:
        # Only a wait that ran out is "not caught up"; a failed read propagates and stops the failover.
        blocker = seen[0] or f"{to.environment} did not reach {old.environment}'s position in time"
    return settling.best or final, blocker


def receives(target: SiteState) -> bool:
    """The target's standby leader reports streaming from the old site (or reports nothing: unknown)."""
    lead = holder(target)
    return lead is None or lead.state is None or lead.state == "streaming"


def own_members(pair: Pair, target_state: SiteState, wait_for: float) -> tuple[SiteState, str | None]:
    """The target read until its lock holder holds what its own members report (rules.ahead_of_holder), its
    Patroni woken meanwhile so that reports older than the holder's last WAL are replaced; (the last read, why
    not: None once it does). A member truly ahead stays ahead: the holder never receives WAL from its replicas."""
    why = ahead_of_holder(target_state)
    if why is None:
        return target_state, None
    nudger, last = Nudger(pair.cluster(pair.to), pair.to), target_state

    def holds() -> bool:
        nonlocal last, why
        last = pair.read(pair.to)
        nudger.seen(last)
        nudger.maybe()
        why = ahead_of_holder(last)
        return why is None

    try:
        pair.wait(f"{pair.to.environment}'s lock holder to hold what its own members report", holds, wait_for)
    except WaitTimedOut:  # only a wait that ran out; a failed read propagates and stops the failover
        return last, why
    return last, None

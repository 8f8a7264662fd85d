"""The handover's LSN gate and its rollback (rolegen.procedures.handover): wait until the target replayed everything
the demoted site may hold, and, when a wait before the promotion runs out, promote the old site back with its
witness Lease, its applications and its traffic."""

from __future__ import annotations

from rolegen.cluster.site_state import SiteState
from rolegen.errors import RolegenError, WaitTimedOut
from rolegen.procedures import dependent_steps, witness_step
from rolegen.procedures.base import Pair
from rolegen.procedures.rules import (
    Position,
    Settling,
    final_position,
    gate_blocker,
    holder_unreported,
    replay_gap,
    settle_blocker,
    shutdown_end,
)
from rolegen.procedures.shutdown_proof import control_texts
from rolegen.procedures.wake import Nudger


def gate(pair: Pair, old_state: SiteState, timeout: float, before: SiteState,
         nudger: Nudger) -> tuple[Position, SiteState]:
    """Wait until the target replayed everything the demoted site may hold; on timeout roll back — only if a
    fresh read of both sites shows the target still a standby and not leading.

    A demotion that hands the lock to a replica leaves the shutdown checkpoint in the lock's optime: final at once.
    A member that keeps the lock (a one-member site) writes no optime: its own report as standby leader says where
    its data ends, and the gate waits for it (rules.holder_unreported). Sooner than either: a member's own report,
    since `before`, that its PostgreSQL shut down cleanly while its Patroni stopped it (rules.shutdown_end): its
    shutdown checkpoint is where its data ends, about two seconds before Patroni publishes it. If a member of the old
    site restarted since `before` (it crashed, or its Pod was deleted and recreated, during the switchover), its
    reports lag what it holds until it replayed its own WAL: then the position must also settle
    (rules.settle_blocker). While the gate is not reached the target's Patroni is woken (wake.Nudger) after
    each read: the read that passes is always the latest, so the promotion's write carries the current
    resourceVersion."""
    texts = control_texts(before)
    final = final_position(old_state)
    shut, proven = shutdown_end(old_state, texts)
    if shut is not None and (final is None or shut.lsn > final.lsn):
        final = shut
    if final is None:
        raise RolegenError(f"{pair.other.environment} reported no LSN after its demotion",
                           hint="re-run: the switchover resumes from the live state")
    settling = Settling()
    settling.observe(old_state)
    settling.include(final)
    seen: list[str | None] = [None]
    gap: list[int | None] = [None]
    last: list[tuple[Position, SiteState] | None] = [None]

    def reached() -> bool:
        target_state, now = pair.read_both()
        shut_now, proven_now = shutdown_end(now, texts)
        settling.include(shut_now)
        proven.update(proven_now)
        target = settling.observe(now) or final
        seen[0], gap[0] = gate_blocker(target_state, target), replay_gap(target_state, target)
        if seen[0] is None:
            seen[0] = holder_unreported(now, proven) or settle_blocker(before, now, settling)
        last[0] = (target, target_state)
        nudger.seen(target_state)
        if seen[0] is not None:
            nudger.maybe()
        return seen[0] is None

    try:
        pair.wait(f"{pair.to.environment} to replay {pair.other.environment}'s final LSN", reached, timeout,
                  gap=lambda: gap[0], every=0.02)
    except WaitTimedOut:
        roll_back(pair, f"{pair.to.environment} did not replay {pair.other.environment}'s final LSN within "
                   f"{timeout:.0f}s ({seen[0]})", f"gate not reached ({seen[0]})",
                   "check replication (rolegen status) and retry")
        raise
    assert last[0] is not None
    return last[0]


def roll_back(pair: Pair, failed: str, said: str, hint: str) -> None:
    """Promote the old site back after a wait that ran out before the promotion (`failed`: what did not happen,
    for the error; `said`: the log line's reason) — only if a fresh read shows the target still a standby and not
    leading. The witness Lease goes back to the old site first (witness_step.regain)."""
    to, old = pair.to, pair.other
    target_state, old_state = pair.read_both()
    if target_state.dcs_role != "standby-leader" or target_state.live_role == "leader":
        raise RolegenError(
            f"{failed}, and {to.environment} no longer declares standby (DCS config {target_state.dcs_role}, "
            f"Patroni {target_state.live_role}): someone else promoted it; {old.environment} was NOT promoted back",
            hint="rolegen status; if both sites hold data the other lacks, rolegen failback repairs the stale one",
        )
    pair.log(f"   {said}: promoting {old.environment} back")
    witness_step.regain(pair)
    pair.write_role(old, "leader", old_state)
    pair.write_role(to, "standby-leader", target_state)  # its DR slot again (pair.unslot removed it)
    pair.mark("rolled_back")
    left = dependent_steps.restore(pair, old)  # its applications back too, and its traffic
    also = f"; but {left}" if left else ""
    raise RolegenError(f"{failed}; {old.environment} was promoted back{also}", hint=hint)

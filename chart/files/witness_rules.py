"""The witness guards' rules, pure: every input is an observation on the deciding process's own monotonic clock,
so a wall clock skewed by minutes changes nothing (docs/witness.md has the argument).

The leader site's guard holds two leases: the witness's (a Lease in a third API server that it renews) and the
standby guard's promise (asked through the DR link; the standby grants it only while it has not begun to
promote). Each lease counts from when the guard *sent* the request that succeeded, never from the answer: a late
answer can only shorten what the leader believes it holds. The leader runs while either lease is fresh, and
fences its own site once both are `fence_after` old.

The standby site's guard promotes only when, on its own clock, it has watched for `promote_after` (fence_after +
margin) without seeing the witness lease change and without granting a promise, its standby leader receives
nothing from the peer, and what it received is within the lag limit of the last position the leader published.
Every renewal the witness applied, and every promise granted, happened after the leader sent it: so the standby's
earliest promotion comes `margin` after the leader's latest fence, and the margin covers the fence taking effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LeaderAction = Literal["run", "fence"]
StandbyAction = Literal["wait", "promote", "refuse-lag"]


@dataclass(frozen=True)
class Timers:
    """Seconds. `fence_after`: a leader that holds neither lease this long fences itself. `margin`: what the
    standby waits beyond it (the fence taking effect: the leader's guard looks every 0.2 s and kills a PostgreSQL
    it stopped since its first unanswered round; 5 s by default, since 10 s left the failover's steps and
    Patroni's promotion under 5 s of the fence_after + 15 s it must complete in: measured 41-50 s with 10).
    `renew_every`: how often the leader renews and asks; `request_timeout`: a request unanswered this long failed."""

    fence_after: float = 30.0
    margin: float = 5.0
    renew_every: float = 5.0
    request_timeout: float = 4.0

    @property
    def promote_after(self) -> float:
        return self.fence_after + self.margin

    def problems(self) -> list[str]:
        """Orders the argument needs: several renewals per fence_after (one lost request is no fence), and a
        request that times out before the next is due (requests never pile up)."""
        found = []
        if self.renew_every * 3 > self.fence_after:
            found.append(f"renew_every ({self.renew_every:g}s) must be at most a third of fence_after "
                         f"({self.fence_after:g}s): one lost renewal must not fence the leader")
        if self.request_timeout >= self.renew_every:
            found.append(f"request_timeout ({self.request_timeout:g}s) must be shorter than renew_every "
                         f"({self.renew_every:g}s)")
        if self.margin <= 0:
            found.append("margin must be positive: it covers the fence taking effect")
        return found


@dataclass
class LeaderGuard:
    """The leader site's guard. `witness_sent` / `promise_sent`: when the last request that succeeded was sent."""

    timers: Timers
    witness_sent: float | None = None
    promise_sent: float | None = None

    def renewed(self, sent_at: float) -> None:
        self.witness_sent = sent_at if self.witness_sent is None else max(self.witness_sent, sent_at)

    def promised(self, sent_at: float) -> None:
        self.promise_sent = sent_at if self.promise_sent is None else max(self.promise_sent, sent_at)

    def held_until(self) -> float | None:
        """Until when the leader may run (None: it never held a lease: it may not run at all)."""
        sent = [t for t in (self.witness_sent, self.promise_sent) if t is not None]
        return max(sent) + self.timers.fence_after if sent else None

    def decide(self, now: float) -> LeaderAction:
        until = self.held_until()
        return "run" if until is not None and now < until else "fence"


@dataclass
class StandbyGuard:
    """The standby site's guard. It starts watching at `started` (a guard that just started knows of no lease
    or promise before: it watches a whole `promote_after` first)."""

    timers: Timers
    started: float
    lease_version: str | None = None
    lease_changed: float | None = None  # when this guard last saw the witness lease change
    promise_granted: float | None = None
    promoting: bool = False

    def saw_lease(self, version: str, at: float) -> None:
        if version != self.lease_version:
            self.lease_version, self.lease_changed = version, at

    def grant(self, at: float) -> bool:
        """A promise asked by the leader: granted (and remembered) unless this guard has begun to promote."""
        if self.promoting:
            return False
        self.promise_granted = at if self.promise_granted is None else max(self.promise_granted, at)
        return True

    def quiet_since(self) -> float:
        """The last sign of a leader that may still run: the start of the watch, a lease change, a promise."""
        return max(t for t in (self.started, self.lease_changed, self.promise_granted) if t is not None)

    def decide(self, now: float, *, receiving: bool, received_lsn: int | None, published_lsn: int | None,
               lag_limit: int | None, synchronous: bool | None = None) -> tuple[StandbyAction, str]:
        """`receiving`: the standby leader received from the peer within the last `request_timeout` (a standby
        that still streams proves its primary alive). `lag_limit` None: synchronous mode, where `synchronous` is
        what the Lease last said: only "true" means nothing acknowledged is missing here (the leader's guard
        says "false" before it lets commits go on without this site). A "promote" also sets `promoting`: no
        promise is granted after it."""
        quiet = now - self.quiet_since()
        if quiet < self.timers.promote_after:
            return "wait", f"the leader may hold a lease for {self.timers.promote_after - quiet:.1f}s more"
        if receiving:
            return "wait", "the standby leader still receives from the peer: its primary is alive"
        if lag_limit is None and synchronous is not True:
            return "refuse-lag", ("the leader said it ran unsynchronized (the witness Lease): what it acknowledged "
                                  "may be missing here" if synchronous is False else
                                  "the leader never said it ran synchronized (the witness Lease)")
        if lag_limit is not None:
            if received_lsn is None or published_lsn is None:
                return "refuse-lag", "no position to compare: what the leader acknowledged is unknown"
            behind = published_lsn - received_lsn
            if behind > lag_limit:
                return "refuse-lag", f"{behind} bytes behind the leader's last published position (limit {lag_limit})"
        self.promoting = True
        return "promote", f"neither lease renewed for {quiet:.1f}s (promote_after {self.timers.promote_after:g}s)"

"""Cross-site synchronous commit, kept by the leader's witness guard (WITNESS_REPLICATION=sync; docs/witness.md).

The rendered `synchronous_standby_names` names the peer's members: while the tunnel answers, each commit waits
for the peer's standby leader. When the peer stops answering (the standby guard's promise is older than
stall_after), commits would wait forever; the guard lets them go on without it, in this order:

1. every renewal of the witness Lease says `rolegen.io/synchronous: "false"` from now on;
2. once one such renewal has landed (and no renewal saying "true" is still on its way), ALTER SYSTEM SET
   synchronous_standby_names = '' and reload: the waiting commits are acknowledged.

The standby's guard fails over by itself only on a Lease that says "true" (it took the Lease at the version it
read, so no later renewal says otherwise): every commit acknowledged until then is on the standby. A leader that
cannot reach the witness cannot say "false", so it never drops the peer: isolated, it acknowledges nothing more.
When the peer streams again, ALTER SYSTEM RESET restores the rendered value; "true" is published again only when
PostgreSQL itself reports a peer member as a synchronous standby (pg_stat_replication, through Patroni's API).
Needs only python3 and psql.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SYNC_STATES = ("sync", "quorum")


def peer_rows(state: dict[str, Any] | None, names: frozenset[str]) -> list[dict[str, Any]]:
    """The walsenders of Patroni's /patroni answer that serve a peer member."""
    rows = (state or {}).get("replication") or []
    return [r for r in rows if isinstance(r, dict) and r.get("application_name") in names]


def in_sync(state: dict[str, Any] | None, names: frozenset[str]) -> bool:
    """PostgreSQL counts a peer member as a synchronous standby now."""
    return any(r.get("sync_state") in SYNC_STATES and r.get("state") == "streaming" for r in peer_rows(state, names))


def streaming(state: dict[str, Any] | None, names: frozenset[str]) -> bool:
    return any(r.get("state") == "streaming" for r in peer_rows(state, names))


@dataclass
class SyncKeeper:
    """What the guard publishes about synchronous commit, and when it drops or restores it. `run_sql` executes
    one statement as the superuser and returns its output (raises on failure); `settle`: seconds after the peer
    is back in force before the position it must confirm is read (a reload reaches every backend within it)."""

    names: frozenset[str]
    run_sql: Callable[[str], str]
    log: Callable[[str], None]
    settle: float = 2.0
    dropping: bool = False  # the peer is gone: renewals say "false"; the drop waits for one to land
    # synchronous_standby_names overridden to '' (ALTER SYSTEM); None: unknown (what an earlier guard of this
    # member left: a new primary's guard knows only what PostgreSQL shows)
    dropped: bool | None = None
    # What the last renewal that landed since the announcement said (None: none landed yet). Renewals run one
    # at a time and each carries the resourceVersion it read, so the last one that landed is what the Lease says.
    last_landed: bool | None = None
    # Commits acknowledged while the peer was not in force may be missing there: "true" waits until the peer has
    # flushed the position read `settle` after it came back in force (`in_force_at`, `must_flush`).
    in_force_at: float | None = None
    must_flush: int | None = None
    confirmed: bool = False
    evidence: bool = False  # the last look: a peer member confirms commits, and has everything acknowledged
    in_flight: dict[int, bool] = field(default_factory=dict)  # renewal id -> what it says

    def look(self, state: dict[str, Any] | None, promise_fresh: bool, now: float) -> None:
        """One look at Patroni's answer and the promise's age: decide whether the peer is gone or back."""
        if in_sync(state, self.names) and self.dropped is None:
            self.dropped, self.in_force_at = False, now  # a peer member confirms: the rendered value is in force
        self._confirm(state, now)
        self.evidence = in_sync(state, self.names) and self.dropped is False and self.confirmed
        if not promise_fresh and not self.dropping:
            self.dropping, self.last_landed = True, None
            self.log("decision=sync-drop-announce reason=the standby's guard stopped answering: the Lease will "
                     "say unsynchronized before commits go on without the peer")
        if self.dropping and self.dropped is not True and self.last_landed is False and not self.in_flight:
            self._sql("ALTER SYSTEM SET synchronous_standby_names = ''", "sync-drop",
                      "the Lease says unsynchronized: commits go on without the peer")
            self.dropped, self.confirmed, self.must_flush, self.in_force_at = True, False, None, None
        if promise_fresh and streaming(state, self.names) and (self.dropping or self.dropped is not False):
            if self.dropped is not False:
                self._sql("ALTER SYSTEM RESET synchronous_standby_names", "sync-restore",
                          "the peer streams again: its members confirm commits again")
            self.dropping, self.dropped, self.in_force_at = False, False, now

    def _confirm(self, state: dict[str, Any] | None, now: float) -> None:
        """Once the peer is in force for `settle`: the primary's position then, and whether the peer flushed it."""
        settled = self.in_force_at is not None and now - self.in_force_at >= self.settle
        if self.dropped is not False or self.confirmed or not settled:
            return
        if self.must_flush is None:
            location = ((state or {}).get("xlog") or {}).get("location")
            if not isinstance(location, int):
                return
            self.must_flush = location
        names = ",".join(f"'{n}'" for n in sorted(self.names))  # Pod names: [a-z0-9-], nothing to escape
        try:
            flushed = self.run_sql("SELECT coalesce(max(pg_catalog.pg_wal_lsn_diff(flush_lsn, '0/0')), -1)::bigint "
                                   f"FROM pg_catalog.pg_stat_replication WHERE application_name IN ({names})")
        except (OSError, subprocess.SubprocessError):
            return  # no answer: not confirmed, asked again at the next look
        if flushed.strip().lstrip("-").isdigit() and int(flushed) >= self.must_flush:
            self.confirmed = True

    def publish(self, renewal: int) -> bool:
        """What renewal `renewal` (about to be sent) says: synchronous only on PostgreSQL's evidence, never while
        dropping or dropped."""
        says = self.evidence and not self.dropping and not self.dropped
        self.in_flight[renewal] = says
        return says

    def landed(self, renewal: int, sent: float | None) -> None:
        """Renewal `renewal` came back (`sent`: when it was sent if it landed, else None)."""
        says = self.in_flight.pop(renewal, None)
        if sent is not None and says is not None and self.dropping:
            self.last_landed = says

    def _sql(self, statement: str, what: str, why: str) -> None:
        try:
            self.run_sql(statement)
            self.run_sql("SELECT pg_catalog.pg_reload_conf()")
        except (OSError, subprocess.SubprocessError) as exc:
            self.log(f"decision={what} failed ({exc}); retried at the next look")
            raise
        self.log(f"decision={what} reason={why}")

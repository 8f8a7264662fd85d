"""One role change at a time: a lease with a fencing token that every mutating verb takes on its sites.

The lease lives in the `rolegen.io/lease` annotation of each site's `<scope>-rolegen` ConfigMap
(rolegen.cluster.records)
and every write of it carries the resourceVersion that was read, so two runs racing for it cannot both win. Each
acquisition or takeover increments the site's `token` (kept when the lease is released), so a run can tell that
someone else held the lease since it looked. While a procedure runs, a thread renews it every RENEW_EVERY seconds.

Ask first, lease after: `observe()` reads the lease before the operator is asked (a run that could not proceed
fails at once, naming the holder) and remembers each token; `take()`, after the answer, refuses if a token moved
meanwhile (another run changed roles while the question was open: what was shown is stale). An open prompt
therefore never blocks another operator's emergency failover.

Before every write (`check()`, from Pair.guard) the run refuses unless the lease is provably still its own: the
lease is re-read and must carry its key and token, and its last renewal must be younger than DURATION on a clock
that counts suspend (a laptop that slept through a `--force` takeover must not write on waking, before its renewal
thread has noticed).

Expiry is never judged by comparing the holder's timestamps with this machine's clock alone (operator and
cluster clocks may differ by a minute): a lease is taken over only when
- its holder is orphaned: it ran on this machine, this boot, this PID namespace, and that process is gone
  (rolegen.cluster.lease_holder: hostnames and PIDs alone repeat across containers), or
- `--force` was given, the stamps say it expired, *and* it was then watched for TAKEOVER_WATCH seconds of our
  own monotonic clock without being renewed (a live holder renews every RENEW_EVERY seconds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rolegen.cluster.kubectl import ClusterUnreachable, Conflict
from rolegen.cluster.lease_holder import DURATION, Holder, Verdict, boottime, describe, stamp, token_of, verdict
from rolegen.cluster.records import LEASE, Records, RecordStore
from rolegen.cluster.wait import poll
from rolegen.errors import RolegenError, WaitTimedOut

__all__ = ["DURATION", "Holder", "Lease", "LeaseHeld", "describe", "stamp", "token_of", "verdict"]

RENEW_EVERY = 5.0
TAKEOVER_WATCH = 2 * RENEW_EVERY + 2
TOOK_OVER = "another rolegen run took over: nothing more was changed by this one"
RERUN = "nothing more was changed by this run: re-run the same command (it reads both sites again and resumes)"


class LeaseHeld(RolegenError):
    """Another rolegen run holds the lease, or this run can no longer prove it holds it."""


@dataclass
class _Held:
    store: RecordStore
    token: int
    renewed: float  # Lease.clock when the last successful write of it started
    acquired: str


@dataclass
class Lease:
    """The lease on a pair's sites. `optional` sites (a failover's old site) may stay unleased when their API does
    not answer (`missing`): writes to them are refused until their lease is taken. `lost` is set once the lease
    is found taken over."""

    stores: list[RecordStore]
    me: Holder
    force: bool = False
    log: Callable[[str], None] = print
    optional: frozenset[str] = frozenset()
    clock: Callable[[], float] = boottime
    lost: str | None = None
    missing: set[str] = field(default_factory=set)
    _held: dict[str, _Held] = field(default_factory=dict)
    _seen: dict[str, int] = field(default_factory=dict)
    _silent: set[str] = field(default_factory=set)  # optional sites that did not answer `observe`
    _deferred: set[str] = field(default_factory=set)  # optional sites asked only before a write to them
    _acquired: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _mutex: threading.RLock = field(default_factory=threading.RLock)

    def _ordered(self) -> list[RecordStore]:
        # Required sites first: one that is busy refuses the run before an optional site is even tried.
        return sorted(self.stores, key=lambda s: (s.spec.environment in self.optional, s.spec.environment))

    def observe(self) -> None:
        """Before the operator is asked: refuse now if another run holds the lease; remember each site's token."""
        for store in self._ordered():
            env = store.spec.environment
            if env in self._deferred:  # asked only before a write to it (_take_late)
                continue
            try:
                lease = store.read().lease
            except ClusterUnreachable:
                if env not in self.optional:
                    raise
                self.log(f"   {env}: API unreachable: its lease cannot be taken now; nothing is written to {env} "
                         "unless it can be taken later")
                self._silent.add(env)
                continue
            self._refuse(env, lease, verdict(lease, self.me, datetime.now(UTC)))
            self._seen[env] = token_of(lease)

    def defer(self, env: str) -> None:
        """Do not ask optional site `env` now: its lease is taken only before a write to it. The standby site's
        guard defers the old site (a lost one may drop packets: each question costs a request timeout of its
        failover's budget); the target's lease, always asked, already keeps a second role change out."""
        if env not in self.optional:
            raise ValueError(f"only an optional site is deferred, not {env}")
        self._deferred.add(env)
        self.log(f"   {env}: its lease is taken before the first write to it, not now")

    def _refuse(self, env: str, lease: dict[str, Any] | None, state: Verdict) -> None:
        if state == "held" or (state == "expired" and not self.force):
            assert lease is not None
            hint = (
                "wait for it to finish, or if that run is gone: re-run with --force once the lease has expired"
                if state == "held"
                else "its holder stopped renewing: re-run with --force to take over"
            )
            raise LeaseHeld(f"a role change is in progress on {env}: lease held by {describe(lease)}", hint=hint)

    def acquire(self) -> None:
        self._stop.clear()
        self._acquired = True
        taken: list[RecordStore] = []
        try:
            for store in self._ordered():
                env = store.spec.environment
                if env in self._deferred:
                    self.missing.add(env)
                    continue
                try:
                    if env in self._silent:  # a moment ago: asking again costs a request timeout before any write
                        raise ClusterUnreachable(f"{env}'s API did not answer when the run began")
                    self._take(store)
                except ClusterUnreachable:
                    if env not in self.optional:
                        raise
                    self.missing.add(env)
                    self.log(f"   {env}: API unreachable: the lease is taken without it; nothing is written to {env} "
                             "unless its lease can be taken later")
                    continue
                taken.append(store)
            if self.missing:
                self.renew_once()  # the sites taken first now name the one that could not be leased
        except BaseException:
            self._release(taken)
            raise

    def _take(self, store: RecordStore) -> None:
        env = store.spec.environment
        for _ in range(5):
            started = self.clock()
            current = store.ensure()
            lease = current.lease
            state = verdict(lease, self.me, datetime.now(UTC))
            self._refuse(env, lease, state)
            if env in self._seen and token_of(lease) != self._seen[env]:
                raise LeaseHeld(
                    f"the lease on {env} was taken and held by another rolegen run while this one waited for an "
                    f"answer (token {self._seen[env]} -> {token_of(lease)}): what it showed may be out of date",
                    hint=RERUN)
            if state == "expired":
                current = self._watch(store, current)
            if state in ("orphaned", "expired"):
                self.log(f"   {env}: taking over the lease of {lease and lease.get('holder')} (gone)")
            try:
                self._write(store, current, token_of(current.lease) + 1, None, started)
                return
            except Conflict:
                continue  # someone wrote meanwhile: look again
        raise LeaseHeld(f"could not take the role-change lease on {env}: it keeps changing",
                        hint="another rolegen run is active: try again later")

    def _watch(self, store: RecordStore, seen: Records) -> Records:
        """--force on an expired lease: take it only if nobody renews it while we watch (our clock only)."""
        try:
            now = poll(store.read, lambda now: now.lease != seen.lease, timeout=TAKEOVER_WATCH, every=0.5,
                       what=f"the lease on {store.spec.environment} to be renewed", sleep_first=True)
        except WaitTimedOut as out:
            assert isinstance(out.last, Records)
            return out.last  # nobody renewed it while we watched: the last read is what the takeover builds on
        assert now.lease is not None
        raise LeaseHeld(f"the lease on {store.spec.environment} was renewed while we watched it: held by "
                        f"{describe(now.lease)}", hint="its holder is alive: let it finish")

    def _write(self, store: RecordStore, current: Records, token: int, acquired: str | None, started: float) -> None:
        assert current.resource_version is not None
        record = stamp(self.me, datetime.now(UTC), acquired, token, self.missing)
        store.write({LEASE: record}, current.resource_version)
        self._held[store.spec.environment] = _Held(store, token, started, str(record["acquired"]))

    def _ours(self, lease: dict[str, Any] | None, held: _Held) -> bool:
        return (lease or {}).get("key") == self.me.key and token_of(lease) == held.token

    def take(self) -> None:
        """Acquire (once) and keep renewing: right after the operator's answer, or at the first guarded write."""
        with self._mutex:
            if not self._acquired:
                self.acquire()
            if self._thread is None:
                self._thread = threading.Thread(target=self._renew_loop, name="rolegen-lease", daemon=True)
                self._thread.start()

    def renew_once(self) -> None:
        with self._mutex:
            for env, held in list(self._held.items()):
                started = self.clock()
                if started - held.renewed > DURATION:
                    continue  # lapsed (suspended, or the API was silent too long): check() refuses; do not hide it
                try:
                    current = held.store.read()
                    if not self._ours(current.lease, held):
                        self.lost = f"the lease on {env} was taken over by {(current.lease or {}).get('holder')}"
                        return
                    self._write(held.store, current, held.token, held.acquired, started)
                except (Conflict, ClusterUnreachable):
                    continue  # next round; a site that stopped answering cannot be changed by anyone else either

    def check(self, env: str | None = None) -> None:
        """Before a write to `env` (all leased sites if None): raise unless the lease is provably still ours."""
        if self.lost:
            raise LeaseHeld(self.lost, hint=TOOK_OVER)
        if not self._acquired:
            self.take()  # a write before any question was asked: the lease is taken now
        with self._mutex:
            for name in [env] if env else sorted(set(self._held) | self.missing):
                if name in self.missing:
                    self._take_late(name)
                held = self._held.get(name)
                if held is None:
                    raise LeaseHeld(f"refusing to write to {name}: this run holds no lease there", hint=RERUN)
                age = self.clock() - held.renewed
                if age > DURATION:
                    raise LeaseHeld(
                        f"this run last renewed its lease on {name} {age:.0f}s ago, more than its {DURATION:.0f}s "
                        f"(the machine was suspended, or {name}'s API did not answer): another run may have taken "
                        "over", hint=RERUN)
                lease = held.store.read().lease
                if not self._ours(lease, held):
                    self.lost = (f"the lease on {name} was taken over by {(lease or {}).get('holder')} "
                                 f"(token {token_of(lease)}, this run's {held.token})")
                    raise LeaseHeld(self.lost, hint=TOOK_OVER)

    def _take_late(self, env: str) -> None:
        """A site whose lease could not be taken at the start (its API did not answer) is written to only once
        its lease is ours too."""
        [store] = [s for s in self.stores if s.spec.environment == env]
        try:
            self._take(store)
        except ClusterUnreachable:
            raise LeaseHeld(f"refusing to write to {env}: its role-change lease could not be taken (its API does "
                            "not answer)", hint=f"re-run the same command once {env}'s API answers") from None
        self.missing.discard(env)
        self.log(f"   {env}: lease taken")

    def release(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=RENEW_EVERY + 5)
        self._release([h.store for h in self._held.values()])

    def _release(self, stores: list[RecordStore]) -> None:
        for store in stores:
            try:
                current = store.read()
                if (current.lease or {}).get("key") == self.me.key and current.resource_version:
                    # The token stays: the next run's token is higher, so a run asked before it can tell.
                    store.write({LEASE: {"token": token_of(current.lease)}}, current.resource_version)
            except (Conflict, ClusterUnreachable):
                continue  # it expires on its own

    @contextmanager
    def held(self, *, lazy: bool = False) -> Iterator[Lease]:
        """Hold the lease for the block; `lazy`: taken by `take()` or the first `check()`, not at entry."""
        if not lazy:
            self.take()
        try:
            yield self
        finally:
            self.release()

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_EVERY):
            try:
                self.renew_once()
            except RolegenError:
                continue

"""One role change at a time: a lease that every mutating verb takes on both sites before it writes anything.

The lease lives in the `rolegen.io/lease` annotation of each site's `<scope>-rolegen` ConfigMap (rolegen.records)
and every write of it carries the resourceVersion that was read, so two runs racing for it cannot both win.
While a procedure runs, a thread renews it every RENEW_EVERY seconds.

Expiry is never judged by comparing the holder's timestamps with this machine's clock alone (operator and
cluster clocks may differ by a minute): a lease is taken over only when
- its holder ran on this host and that process is gone (a killed rolegen re-run on the same machine), or
- `--force` was given, the stamps say it expired, *and* it was then watched for TAKEOVER_WATCH seconds of our
  own monotonic clock without being renewed (a live holder renews every RENEW_EVERY seconds).
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from rolegen.errors import RolegenError
from rolegen.kubectl import ClusterUnreachable, Conflict
from rolegen.records import LEASE, Records, RecordStore

DURATION = 30.0
RENEW_EVERY = 5.0
TAKEOVER_WATCH = 2 * RENEW_EVERY + 2


class LeaseHeld(RolegenError):
    """Another rolegen run holds the lease."""


@dataclass(frozen=True)
class Holder:
    """Who takes the lease: `identity` is unique per process."""

    operation: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    user: str = field(default_factory=lambda: _user())

    @property
    def identity(self) -> str:
        return f"{self.user}@{self.host}:{self.pid}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stamp(holder: Holder, now: datetime, acquired: str | None = None) -> dict[str, Any]:
    return {
        "holder": holder.identity,
        "operation": holder.operation,
        "host": holder.host,
        "pid": holder.pid,
        "acquired": acquired or now.isoformat(timespec="seconds"),
        "renewed": now.isoformat(timespec="seconds"),
        "duration": DURATION,
    }


def expires(lease: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(lease["renewed"])) + timedelta(seconds=float(lease["duration"]))
    except (KeyError, TypeError, ValueError):
        return None


Verdict = Literal["free", "mine", "orphaned", "expired", "held"]


def verdict(lease: dict[str, Any] | None, me: Holder, now: datetime, alive: Callable[[int], bool] = _alive) -> Verdict:
    """What the lease record says, before any watching: free, ours, orphaned (its holder ran on this host and
    is gone), expired by its own stamps (a takeover still needs --force and a watch), or held."""
    if not lease or not lease.get("holder"):
        return "free"
    if lease.get("holder") == me.identity:
        return "mine"
    pid = lease.get("pid")
    if lease.get("host") == me.host and isinstance(pid, int) and not alive(pid):
        return "orphaned"
    end = expires(lease)
    if end is None or end < now:
        return "expired"
    return "held"


def describe(lease: dict[str, Any]) -> str:
    end = expires(lease)
    until = end.strftime("%Y-%m-%dT%H:%M:%SZ") if end else "?"
    return f"{lease.get('holder')} ({lease.get('operation')}) until {until} by its own clock"


@dataclass
class Lease:
    """The lease on every reachable site of a pair; `lost` is set if a renewal finds it taken over."""

    stores: list[RecordStore]
    me: Holder
    force: bool = False
    log: Callable[[str], None] = print
    lost: str | None = None
    _acquired: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def acquire(self) -> None:
        self._stop.clear()
        taken: list[RecordStore] = []
        try:
            for store in sorted(self.stores, key=lambda s: s.spec.environment):
                self._take(store)
                taken.append(store)
        except BaseException:
            self._release(taken)
            raise

    def _take(self, store: RecordStore) -> None:
        env = store.spec.environment
        for _ in range(5):
            current = store.ensure()
            lease = current.lease
            state = verdict(lease, self.me, datetime.now(UTC))
            if state == "held" or (state == "expired" and not self.force):
                assert lease is not None
                hint = (
                    "wait for it to finish, or if that run is gone: re-run with --force once the lease has expired"
                    if state == "held"
                    else "its holder stopped renewing: re-run with --force to take over"
                )
                raise LeaseHeld(f"a role change is in progress on {env}: lease held by {describe(lease)}", hint=hint)
            if state == "expired":
                current = self._watch(store, current)
            if state in ("orphaned", "expired"):
                self.log(f"   {env}: taking over the lease of {lease and lease.get('holder')} (gone)")
            try:
                self._write(store, current, lease if state == "mine" else None)
                return
            except Conflict:
                continue  # someone wrote meanwhile: look again
        raise LeaseHeld(f"could not take the role-change lease on {env}: it keeps changing",
                        hint="another rolegen run is active: try again later")

    def _watch(self, store: RecordStore, seen: Records) -> Records:
        """--force on an expired lease: take it only if nobody renews it while we watch (our clock only)."""
        deadline = time.monotonic() + TAKEOVER_WATCH
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = store.read()
            if now.lease != seen.lease:
                assert now.lease is not None
                raise LeaseHeld(f"the lease on {store.spec.environment} was renewed while we watched it: held by "
                                f"{describe(now.lease)}", hint="its holder is alive: let it finish")
        return store.read()

    def _write(self, store: RecordStore, current: Records, mine: dict[str, Any] | None) -> None:
        env = store.spec.environment
        assert current.resource_version is not None
        acquired = self._acquired.get(env) or (mine or {}).get("acquired")
        record = stamp(self.me, datetime.now(UTC), acquired)
        store.write({LEASE: record}, current.resource_version)
        self._acquired[env] = str(record["acquired"])

    def renew_once(self) -> None:
        for store in self.stores:
            env = store.spec.environment
            try:
                current = store.read()
                if (current.lease or {}).get("holder") != self.me.identity:
                    self.lost = f"the lease on {env} was taken over by {(current.lease or {}).get('holder')}"
                    return
                self._write(store, current, current.lease)
            except (Conflict, ClusterUnreachable):
                continue  # next round; a site that stopped answering cannot be changed by anyone else either

    def check(self) -> None:
        """Raise before a write if the lease was lost (someone forced a takeover of a run that looked dead)."""
        if self.lost:
            raise LeaseHeld(self.lost, hint="another rolegen run took over: nothing more was changed by this one")

    def release(self) -> None:
        self._stop.set()
        self._release(self.stores)

    def _release(self, stores: list[RecordStore]) -> None:
        for store in stores:
            try:
                current = store.read()
                if (current.lease or {}).get("holder") == self.me.identity and current.resource_version:
                    store.write({LEASE: None}, current.resource_version)
            except (Conflict, ClusterUnreachable):
                continue  # it expires on its own

    @contextmanager
    def held(self) -> Iterator[Lease]:
        self.acquire()
        thread = threading.Thread(target=self._renew_loop, name="rolegen-lease", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=RENEW_EVERY + 5)
            self.release()

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_EVERY):
            try:
                self.renew_once()
            except RolegenError:
                continue

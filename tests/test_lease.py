"""One role change at a time (rolegen.cluster.lease): the verdict on a lease record, and two runs racing for it over an
in-memory `<scope>-rolegen` ConfigMap with the API server's resourceVersion check."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rolegen.cluster import lease as lease_mod
from rolegen.cluster.kubectl import ClusterUnreachable, Conflict
from rolegen.cluster.lease import DURATION, Holder, Lease, LeaseHeld, stamp, token_of, verdict
from rolegen.cluster.lease_holder import start_time
from rolegen.cluster.records import LEASE, Records
from rolegen.offline.spec import Spec
from rolegen.offline.workspace import load_workspace

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


class MemoryStore:
    """A RecordStore whose ConfigMap lives in a dict shared by every run, refusing stale resourceVersions."""

    def __init__(self, spec: Spec, objects: dict[str, Records]) -> None:
        self.spec, self.objects = spec, objects

    def read(self) -> Records:
        return self.objects.get(self.spec.environment, Records())

    def ensure(self) -> Records:
        return self.objects.setdefault(self.spec.environment, Records(resource_version="1"))

    def write(self, values: dict[str, Any], resource_version: str) -> None:
        current = self.ensure()
        if current.resource_version != resource_version:
            raise Conflict("changed by someone else since it was read")
        self.objects[self.spec.environment] = dataclasses.replace(
            current, lease=values.get(LEASE, current.lease), resource_version=str(int(resource_version) + 1)
        )


@pytest.fixture
def specs() -> list[Spec]:
    ws = load_workspace(REPO / "environments")
    return [ws.specs["gold"], ws.specs["golddr"]]


def lease_for(specs: list[Spec], objects: dict[str, Records], holder: Holder, force: bool = False,
              clock: Any = time.monotonic) -> Lease:
    stores: list[Any] = [MemoryStore(s, objects) for s in specs]
    return Lease(stores, holder, force=force, log=lambda _: None, clock=clock)


def test_verdicts() -> None:
    me = Holder("switchover --to golddr", host="ops-1", pid=100, user="ana")
    other = Holder("failover --to golddr", host="ops-2", pid=200, user="bo")
    live = stamp(other, NOW)
    assert verdict(None, me, NOW) == "free"
    assert verdict({"holder": ""}, me, NOW) == "free"
    assert verdict(stamp(me, NOW), me, NOW) == "mine"
    assert verdict(live, me, NOW + timedelta(seconds=10)) == "held"
    assert verdict(live, me, NOW + timedelta(seconds=31)) == "expired"
    # Same host, boot and PID namespace, process gone: a killed rolegen re-run on the same machine takes over at once.
    dead_here = stamp(Holder("switchover --to golddr", host="ops-1", pid=999, user="ana", start=5), NOW)
    assert verdict(dead_here, me, NOW, start_of=lambda pid: None) == "orphaned"
    assert verdict(dead_here, me, NOW, start_of=lambda pid: 5) == "held"


def test_a_second_run_fails_naming_the_holder_and_until_when(specs: list[Spec]) -> None:
    objects: dict[str, Records] = {}
    first = lease_for(specs, objects, Holder("switchover --to golddr", host="ops-1", pid=1, user="ana"))
    first.acquire()
    second = lease_for(specs, objects, Holder("failover --to golddr", host="ops-2", pid=2, user="bo"))
    with pytest.raises(LeaseHeld) as caught:
        second.acquire()
    assert "a role change is in progress on gold: lease held by ana@ops-1:1 (switchover --to golddr) until" in (
        caught.value.message
    )
    assert caught.value.hint is not None and "--force once the lease has expired" in caught.value.hint
    first.release()
    second.acquire()  # free again
    assert objects["gold"].lease is not None and objects["gold"].lease["holder"] == "bo@ops-2:2"


def test_force_never_takes_over_a_lease_that_is_still_renewed(
    specs: list[Spec], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamps say expired (the holder's clock runs a minute behind ours), but the holder renews: taken over
    only if it stops renewing while we watch with our own monotonic clock."""
    monkeypatch.setattr(lease_mod, "TAKEOVER_WATCH", 1.5)
    objects: dict[str, Records] = {}
    skewed = Holder("switchover --to golddr", host="ops-2", pid=2, user="bo")
    old = stamp(skewed, datetime.now(UTC) - timedelta(seconds=90))
    objects["gold"] = Records("1", lease=old)
    objects["golddr"] = Records("1", lease=old)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(0.3):
            for env in ("gold", "golddr"):
                cur = objects[env]
                objects[env] = dataclasses.replace(cur, lease={**old, "renewed": f"tick-{time.monotonic()}"},
                                                   resource_version=str(int(cur.resource_version or 1) + 1))

    thread = threading.Thread(target=renew)
    thread.start()
    try:
        forced = lease_for(specs, objects, Holder("failover --to golddr", host="ops-1", pid=1), force=True)
        with pytest.raises(LeaseHeld, match="renewed while we watched it"):
            forced.acquire()
    finally:
        stop.set()
        thread.join()
    # Without --force an expired lease is refused with the way out; with it, a silent holder is taken over.
    objects["gold"] = Records("9", lease=old)
    objects["golddr"] = Records("9", lease=old)
    with pytest.raises(LeaseHeld) as caught:
        lease_for(specs, objects, Holder("failover --to golddr", host="ops-1", pid=1)).acquire()
    assert caught.value.hint == "its holder stopped renewing: re-run with --force to take over"
    lease_for(specs, objects, Holder("failover --to golddr", host="ops-1", pid=1), force=True).acquire()
    assert objects["golddr"].lease is not None and objects["golddr"].lease["holder"].endswith("@ops-1:1")


def test_a_run_whose_lease_was_taken_over_stops_before_its_next_write(specs: list[Spec]) -> None:
    objects: dict[str, Records] = {}
    mine = lease_for(specs, objects, Holder("switchover --to golddr", host="ops-1", pid=1))
    mine.acquire()
    thief = Holder("failover --to golddr", host="ops-2", pid=2)
    objects["golddr"] = dataclasses.replace(objects["golddr"], lease=stamp(thief, datetime.now(UTC)))
    mine.renew_once()
    with pytest.raises(LeaseHeld, match="taken over by"):
        mine.check()


def test_a_partial_acquisition_is_released(specs: list[Spec]) -> None:
    busy = stamp(Holder("apply --env golddr", host="x", pid=5), datetime.now(UTC))
    objects: dict[str, Records] = {"golddr": Records("1", lease=busy)}
    with pytest.raises(LeaseHeld):
        lease_for(specs, objects, Holder("switchover --to golddr", host="ops-1", pid=1)).acquire()
    assert "holder" not in (objects["gold"].lease or {})  # gold's half was given back


# -- who is orphaned: hostnames and PIDs repeat across containers and CI runners -------------------------------------
def test_a_holder_in_another_container_with_the_same_hostname_and_pid_is_never_orphaned() -> None:
    """Two CI jobs in containers named `runner`, each rolegen PID 1: the other job's lease is live, not orphaned,
    although its PID is invisible here. Only the same boot and PID namespace make a gone PID mean "dead"."""
    me = Holder("switchover --to golddr", host="runner", pid=1, user="ci", boot="b-1", pidns="pid:[1]", start=50)
    gone: dict[str, Any] = {"start_of": lambda pid: None}
    other_container = stamp(dataclasses.replace(me, operation="failover --to golddr", pidns="pid:[2]", start=70), NOW)
    other_boot = stamp(dataclasses.replace(me, boot="b-0", start=20), NOW)
    assert verdict(other_container, me, NOW, **gone) == "held"
    assert verdict(other_boot, me, NOW, **gone) == "held"
    # Same container: the PID gone, or reused by a process that started at another time -> orphaned.
    same = stamp(dataclasses.replace(me, pid=7, start=30), NOW)
    assert verdict(same, me, NOW, **gone) == "orphaned"
    assert verdict(same, me, NOW, start_of=lambda pid: 31) == "orphaned"
    assert verdict(same, me, NOW, start_of=lambda pid: 30) == "held"
    # Not the same process although user@host:pid read alike: its lease is not ours.
    assert verdict(stamp(dataclasses.replace(me, start=49), NOW), me, NOW, start_of=lambda pid: 50) == "orphaned"
    assert verdict(stamp(dataclasses.replace(me, boot="b-0"), NOW), me, NOW, start_of=lambda pid: 50) == "held"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_orphan_detection_reads_this_machine(specs: list[Spec]) -> None:
    """A killed run on this machine (its PID gone) is taken over at once, without --force."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    dead = Holder("switchover --to golddr", pid=int(child.stdout))
    assert dead.boot and dead.pidns and start_time(os.getpid())
    objects = {env: Records("1", lease=stamp(dead, datetime.now(UTC), token=4)) for env in ("gold", "golddr")}
    lease_for(specs, objects, Holder("switchover --to golddr")).acquire()
    assert objects["gold"].lease is not None and objects["gold"].lease["pid"] == os.getpid()
    assert token_of(objects["gold"].lease) == 5


# -- the fencing token ------------------------------------------------------------------------------------------------
def test_every_acquisition_increments_the_token_and_a_release_keeps_it(specs: list[Spec]) -> None:
    objects: dict[str, Records] = {}
    tokens = []
    for pid in (1, 2, 3):
        run = lease_for(specs, objects, Holder("switchover --to golddr", host="ops-1", pid=pid, start=pid))
        run.acquire()
        tokens.append(token_of(objects["golddr"].lease))
        run.release()
        assert verdict(objects["golddr"].lease, run.me, datetime.now(UTC)) == "free"
    assert tokens == [1, 2, 3]


class Clock:
    """A clock that counts suspend (CLOCK_BOOTTIME), moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_suspended_holder_writes_nothing_after_a_forced_takeover(specs: list[Spec]) -> None:
    """The operator's laptop sleeps for 15 s mid-switchover; a colleague whose clock runs ahead sees the lease
    expired and takes it with --force. On waking, the first guarded write refuses, before the renewal thread has
    run: the lease now carries another token."""
    objects: dict[str, Records] = {}
    clock = Clock()
    mine = lease_for(specs, objects, Holder("switchover --to golddr", host="laptop", pid=1, start=1), clock=clock)
    mine.acquire()
    mine.check("golddr")  # ours and fresh: the write may go ahead
    clock.now += 15
    thief = lease_for(specs, objects, Holder("failover --to golddr", host="ops-2", pid=2, start=2))
    for env in ("gold", "golddr"):  # what --force leaves once its watch saw no renewal
        objects[env] = dataclasses.replace(objects[env], lease=stamp(thief.me, NOW, token=2))
    with pytest.raises(LeaseHeld, match=r"taken over by .*@ops-2:2") as caught:
        mine.check("golddr")
    assert "token 2, this run's 1" in caught.value.message
    with pytest.raises(LeaseHeld):  # and stays refused for every site
        mine.check("gold")


def test_a_holder_suspended_past_the_lease_duration_refuses_even_if_nobody_took_over(specs: list[Spec]) -> None:
    """Slept longer than the lease lasts: what the run read before may be stale and anyone may have taken over
    and released. Refused without a read; renewing after the gap does not make it fresh again."""
    objects: dict[str, Records] = {}
    clock = Clock()
    mine = lease_for(specs, objects, Holder("switchover --to golddr", host="laptop", pid=1, start=1), clock=clock)
    mine.acquire()
    clock.now += 4
    mine.renew_once()
    clock.now += DURATION - 1
    mine.check("gold")  # 29 s after the last renewal: still ours
    clock.now += 2
    mine.renew_once()  # the renewal thread wakes first
    with pytest.raises(LeaseHeld, match=r"last renewed its lease on gold 31s ago, more than its 30s") as caught:
        mine.check("gold")
    assert caught.value.hint is not None and "re-run the same command" in caught.value.hint


class SilentStore(MemoryStore):
    """The old site of a failover whose API does not answer: every request fails (each one a request timeout)."""

    asked = 0

    def _silent(self) -> Records:
        SilentStore.asked += 1
        raise ClusterUnreachable("cannot reach the cluster of context gold: i/o timeout")

    def read(self) -> Records:
        return self._silent()

    def ensure(self) -> Records:
        return self._silent()


def test_an_optional_site_silent_when_the_run_began_is_not_asked_again_before_the_first_write(
        specs: list[Spec]) -> None:
    """A failover's old site lost: observe found its API silent; taking the lease asked it again, which with a
    dropped route costs a whole request timeout before the promotion. It is left out (`missing`), as before."""
    objects: dict[str, Records] = {}
    gold, golddr = specs
    SilentStore.asked = 0
    lease = Lease([MemoryStore(golddr, objects), SilentStore(gold, objects)], Holder("failover --to golddr"),
                  log=lambda _: None, optional=frozenset({"gold"}))
    lease.observe()
    lease.acquire()
    try:
        assert SilentStore.asked == 1
        assert lease.missing == {"gold"}
        assert objects["golddr"].lease is not None  # the target's lease is held, naming the site it could not lease
    finally:
        lease.release()


def test_a_deferred_site_is_not_asked_until_a_write_to_it_and_then_its_lease_is_taken(specs: list[Spec]) -> None:
    """The standby's guard defers the old site: a lost site whose route drops packets costs nothing before the
    promotion, and a fence written to a site that answers still needs its lease first."""
    objects: dict[str, Records] = {}
    gold, golddr = specs
    lines: list[str] = []
    lease = Lease([MemoryStore(golddr, objects), MemoryStore(gold, objects)], Holder("failover --to golddr"),
                  log=lines.append, optional=frozenset({"gold"}))
    lease.defer("gold")
    lease.observe()
    lease.acquire()
    try:
        assert "gold" not in objects and lease.missing == {"gold"}
        lease.check("gold")  # before the fence write
        assert objects["gold"].lease is not None and lease.missing == set()
        assert "   gold: lease taken" in lines
    finally:
        lease.release()
    with pytest.raises(ValueError, match="only an optional site"):
        lease_for(specs, {}, Holder("switchover --to golddr")).defer("gold")

"""One role change at a time (rolegen.lease): the verdict on a lease record, and two runs racing for it over an
in-memory `<scope>-rolegen` ConfigMap with the API server's resourceVersion check."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rolegen import lease as lease_mod
from rolegen.kubectl import Conflict
from rolegen.lease import Holder, Lease, LeaseHeld, stamp, verdict
from rolegen.records import LEASE, Records
from rolegen.spec import Spec
from rolegen.workspace import load_workspace

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


def lease_for(specs: list[Spec], objects: dict[str, Records], holder: Holder, force: bool = False) -> Lease:
    stores: list[Any] = [MemoryStore(s, objects) for s in specs]
    return Lease(stores, holder, force=force, log=lambda _: None)


def test_verdicts() -> None:
    me = Holder("switchover --to golddr", host="ops-1", pid=100, user="ana")
    other = Holder("failover --to golddr", host="ops-2", pid=200, user="bo")
    live = stamp(other, NOW)
    assert verdict(None, me, NOW) == "free"
    assert verdict({"holder": ""}, me, NOW) == "free"
    assert verdict(stamp(me, NOW), me, NOW) == "mine"
    assert verdict(live, me, NOW + timedelta(seconds=10)) == "held"
    assert verdict(live, me, NOW + timedelta(seconds=31)) == "expired"
    # Same host, process gone: a killed rolegen re-run on the same machine takes over at once.
    dead_here = stamp(Holder("switchover --to golddr", host="ops-1", pid=999, user="ana"), NOW)
    assert verdict(dead_here, me, NOW, alive=lambda pid: False) == "orphaned"
    assert verdict(dead_here, me, NOW, alive=lambda pid: True) == "held"


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
    assert objects["gold"].lease is None  # gold's half was given back

"""The standby guard's decisions as Kubernetes Events on its own site's `<scope>-config`: one Event per decision a
person reading `kubectl get events` needs (the Lease taken or not, the rules refusing, the failover started,
stopped, done, the guard watching again after a failback), never one per look; written in the background, and a
write that fails never stops the guard nor the Events after it."""

from __future__ import annotations

import threading
from typing import Any, cast

from tests.helpers import spec_data
from tests.test_witness_standby import TIMERS, Fake, run_until

from rolegen.cluster.kubectl import Cluster, ClusterUnreachable
from rolegen.commands.guard import site_events
from rolegen.offline.spec import Spec
from rolegen.witness.lease import WitnessView
from rolegen.witness.standby import Ports, SiteView, StandbyLoop


def watched(fake: Fake, lag_limit: int | None = 100) -> tuple[StandbyLoop, list[tuple[str, str, str]]]:
    """`fake`'s loop with the Events it decides, as (reason, type, message)."""
    events: list[tuple[str, str, str]] = []
    ports = Ports(fake.read_lease, fake.read_site, fake.take, fake.promote)
    loop = StandbyLoop("golddr", TIMERS, lag_limit, ports, fake.log.append, now=lambda: fake.now,
                       notify=lambda reason, message, kind: events.append((reason, kind, message)))
    return loop, events


def reasons(events: list[tuple[str, str, str]]) -> list[str]:
    return [reason for reason, _, _ in events]


def test_an_automatic_failover_is_three_events_and_leading_after_it_none() -> None:
    fake = Fake()
    loop, events = watched(fake)
    run_until(fake, loop, 39)
    assert events == []  # waiting is no decision worth an Event: forty looks, no Event
    run_until(fake, loop, 60)
    assert reasons(events) == ["WitnessLeaseTaken", "AutomaticFailoverStarted", "AutomaticFailoverSucceeded"]
    assert all(kind == "Normal" for _, kind, _ in events)
    assert "neither lease renewed for 40.0s (promote_after 40s)" in events[0][2]  # why the guard took it
    assert "rolegen failover --to golddr" in events[1][2]


def test_a_failover_that_stops_the_same_way_at_every_look_is_one_warning() -> None:
    fake = Fake(failover_errors=5)
    loop, events = watched(fake)
    run_until(fake, loop, 46)
    assert reasons(events) == ["WitnessLeaseTaken", "AutomaticFailoverStarted", "AutomaticFailoverStopped",
                               "AutomaticFailoverSucceeded"]
    _, kind, message = events[2]
    assert kind == "Warning" and "golddr has no running standby leader to promote" in message
    assert "runs the steps again" in message


def test_the_rules_refusing_on_lag_is_one_warning_each_time_they_start_refusing() -> None:
    fake = Fake(site=SiteView(False, 800))  # 200 bytes behind, limit 100
    loop, events = watched(fake)
    run_until(fake, loop, 80)
    assert events == [("AutomaticFailoverRefused", "Warning", "golddr may not fail over by itself: 200 bytes behind "
                       "the leader's last published position (limit 100); the failover stays manual (rolegen "
                       "failover)")]
    fake.renew()  # the leader is back for a while: waiting again
    run_until(fake, loop, 100)
    fake.site = SiteView(False, 700)
    run_until(fake, loop, 160)
    assert reasons(events) == ["AutomaticFailoverRefused", "AutomaticFailoverRefused"] and fake.promotions == 0


def test_a_witness_out_of_reach_refuses_the_takeover_at_every_look_and_says_so_once() -> None:
    fake = Fake()
    loop, events = watched(fake)
    loop.step()
    fake.witness_up = False
    run_until(fake, loop, 90)
    assert reasons(events) == ["WitnessLeaseNotTaken"] and fake.promotions == 0
    assert "witness: connection refused" in events[0][2] and "nothing promoted" in events[0][2]


def test_after_a_failback_the_guard_says_once_that_it_watches_again() -> None:
    fake = Fake()
    loop, events = watched(fake)
    run_until(fake, loop, 41)
    fake.lease = WitnessView("gold", "9", lsn=5000)  # the failback moved it back to gold
    run_until(fake, loop, 60)
    assert reasons(events)[-1] == "WitnessGuardWatching" and reasons(events).count("WitnessGuardWatching") == 1
    assert "the witness Lease is gold's again" in events[-1][2]


class _Site:
    """A site's API as the Event writer uses it: `create_event`, failing while `down`."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.down = False
        self.tried = threading.Semaphore(0)

    def create_event(self, body: dict[str, Any], seconds: float) -> None:
        try:
            if self.down:
                raise ClusterUnreachable("golddr: connection refused")
            self.written.append(body)
        finally:
            self.tried.release()


def test_events_go_to_the_sites_own_config_map_and_a_failed_write_never_ends_them() -> None:
    spec = Spec.from_dict(spec_data("golddr"))
    site, lines = _Site(), []
    notify = site_events(spec, cast(Cluster, site), lines.append)
    site.down = True
    notify("WitnessLeaseTaken", "golddr's guard took the witness Lease: ...", "Normal")
    assert site.tried.acquire(timeout=10)
    site.down = False  # a guard runs for months: the API coming back gets the next Event
    notify("AutomaticFailoverStopped", "the failover to golddr stopped: ...", "Warning")
    assert site.tried.acquire(timeout=10)
    [body] = site.written
    assert body["involvedObject"] == {"apiVersion": "v1", "kind": "ConfigMap", "name": f"{spec.scope}-config",
                                      "namespace": spec.namespace}
    assert (body["reason"], body["type"]) == ("AutomaticFailoverStopped", "Warning")
    assert body["source"]["component"] == "rolegen"
    assert lines == ["warning: a Kubernetes Event not written on golddr (golddr: connection refused); the next one "
                     "is tried"]

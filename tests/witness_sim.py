"""A discrete-event model of the witness protocol (rolegen.witness.rules) to check its safety under any link
schedule: the leader guard L, the standby guard S and the witness W exchange messages over six directed links
that go down and up on a schedule, with random delays (some arriving long after they were sent), on clocks that
start anywhere and run at slightly different rates. The rules decide; the model only moves messages and time.

What it checks: never two writable primaries (L writable until its fence took effect, S writable once its
promotion completed), and how long a failover took.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rolegen.witness.rules import LeaderGuard, StandbyGuard, Timers

# Directed: LW = leader to witness. WAL is the replication stream from L to S on its own connection: it can
# break while the guards still talk (a walreceiver error, a lost slot, a TLS failure), and the reverse.
LINKS = ("LW", "WL", "LS", "SL", "SW", "WS", "WAL")


@dataclass
class Schedule:
    """Which links are down when: (link, from, to) in true seconds; `until` ends the run."""

    down: list[tuple[str, float, float]] = field(default_factory=list)
    until: float = 200.0
    late: float = 0.02  # share of messages delivered very late (up to `late_by` seconds)
    late_by: float = 90.0

    def up(self, link: str, t: float) -> bool:
        return not any(name == link and start <= t < end for name, start, end in self.down)


@dataclass
class Outcome:
    overlap: float  # seconds during which both sites were writable
    leader_fenced_at: float | None
    standby_promoted_at: float | None
    events: list[str]


@dataclass
class Clock:
    offset: float
    rate: float

    def at(self, t: float) -> float:
        return self.offset + self.rate * t


def run(schedule: Schedule, timers: Timers, seed: int, *, demote_time: float = 3.0, promote_time: float = 2.0,
        poll_every: float = 1.0, standby: Callable[[Timers, float], StandbyGuard] = StandbyGuard) -> Outcome:
    rng = random.Random(seed)
    clocks = {n: Clock(rng.uniform(-1e6, 1e6), 1 + rng.uniform(-1e-4, 1e-4)) for n in "LSW"}
    queue: list[tuple[float, int, str, dict[str, Any]]] = []
    seq = [0]
    events: list[str] = []

    def send(link: str, t: float, kind: str, **data: Any) -> None:
        if not schedule.up(link, t):
            return
        delay = rng.uniform(0.001, 0.3)
        if rng.random() < schedule.late:
            delay = rng.uniform(0.3, schedule.late_by)
        seq[0] += 1
        heapq.heappush(queue, (t + delay, seq[0], kind, {"link": link, **data}))

    leader = LeaderGuard(timers)
    leader.renewed(clocks["L"].at(0.0))  # L came up holding the witness lease
    guard = standby(timers, clocks["S"].at(0.0))
    lease = {"holder": "L", "version": 1}
    l_fence_decided: float | None = None
    s_promote_decided: float | None = None
    s_writable_at: float | None = None
    s_last_wal: float | None = None  # S's clock
    s_seen_holder = "L"
    overlap = 0.0
    step = 0.05
    next_renew, next_poll, next_wal = 0.0, 0.0, 0.0
    t = 0.0
    while t < schedule.until:
        while queue and queue[0][0] <= t:
            _, _, kind, msg = heapq.heappop(queue)
            if kind == "renew":  # at W: renew if L still holds it
                ok = lease["holder"] == "L"
                if ok:
                    lease["version"] += 1
                send("WL", t, "renewed", ok=ok, sent=msg["sent"])
            elif kind == "renewed":  # at L
                if msg["ok"] and clocks["L"].at(t) - msg["sent"] < timers.request_timeout:
                    leader.renewed(msg["sent"])
            elif kind == "ask":  # at S
                ok = guard.grant(clocks["S"].at(t))
                send("SL", t, "granted", ok=ok, sent=msg["sent"])
            elif kind == "granted":  # at L
                if msg["ok"] and clocks["L"].at(t) - msg["sent"] < timers.request_timeout:
                    leader.promised(msg["sent"])
            elif kind == "poll":  # at W
                send("WS", t, "lease", version=str(lease["version"]), holder=lease["holder"], sent=msg["sent"])
            elif kind == "lease":  # at S
                if clocks["S"].at(t) - msg["sent"] < timers.request_timeout:
                    guard.saw_lease(msg["version"], clocks["S"].at(t))
                    s_seen_holder = msg["holder"]
            elif kind == "take":  # at W: S takes the lease if it is unchanged since S saw it
                ok = str(lease["version"]) == msg["version"]
                if ok:
                    lease["holder"], lease["version"] = "S", lease["version"] + 1
                    events.append(f"{t:.2f} W: lease taken by S")
                send("WS", t, "taken", ok=ok, sent=msg["sent"])
            elif kind == "taken":  # at S
                if msg["ok"] and s_writable_at is None:
                    s_writable_at = t + promote_time
                elif not msg["ok"]:
                    guard.promoting = False  # the leader renewed meanwhile: watch again
            elif kind == "wal" and s_writable_at is None:
                s_last_wal = clocks["S"].at(t)
        lt = clocks["L"].at(t)
        l_running = l_fence_decided is None
        if l_running and leader.decide(lt) == "fence":
            l_fence_decided = t
            events.append(f"{t:.2f} L: fence (held until {leader.held_until()})")
        l_writable = l_fence_decided is None or t < l_fence_decided + demote_time
        if l_running and t >= next_renew:
            send("LW", t, "renew", sent=lt)
            send("LS", t, "ask", sent=lt)
            next_renew = t + timers.renew_every
        if l_writable and t >= next_wal and schedule.up("LS", t):
            send("WAL", t, "wal")
            next_wal = t + 0.2
        st = clocks["S"].at(t)
        if t >= next_poll and s_writable_at is None:
            send("SW", t, "poll", sent=st)
            next_poll = t + poll_every
        if s_promote_decided is None or not guard.promoting:
            receiving = s_last_wal is not None and st - s_last_wal < timers.request_timeout
            action, why = guard.decide(st, receiving=receiving, received_lsn=0, published_lsn=0, lag_limit=0)
            if action == "promote":
                s_promote_decided = t
                events.append(f"{t:.2f} S: promote ({why})")
                if s_seen_holder == "S":
                    s_writable_at = t + promote_time
                else:
                    send("SW", t, "take", version=guard.lease_version, sent=st)
        s_writable = s_writable_at is not None and t >= s_writable_at
        if l_writable and s_writable:
            overlap += step
        t += step
    return Outcome(overlap, l_fence_decided, s_writable_at, events)


def random_schedule(rng: random.Random, until: float = 240.0) -> Schedule:
    """Links going down and up at random: whole-site isolation, single links, one direction, flapping."""
    down: list[tuple[str, float, float]] = []
    for _ in range(rng.randint(1, 6)):
        start = rng.uniform(0, until * 0.7)
        length = rng.choice([rng.uniform(0.5, 10), rng.uniform(10, 60), until])
        shape = rng.random()
        if shape < 0.2:
            links = ["LW", "WL", "LS", "SL", "WAL"]  # the leader isolated from both
        elif shape < 0.3:
            links = ["SW", "WS", "LS", "SL", "WAL"]  # the standby isolated from both
        elif shape < 0.45:
            links = ["LS", "SL", "WAL"]  # the tunnel
        elif shape < 0.55:
            links = ["LW", "WL", "SW", "WS"]  # the witness
        else:
            links = rng.sample(LINKS, rng.randint(1, 3))  # asymmetric, one direction
        down += [(link, start, start + length) for link in links]
    return Schedule(down, until)

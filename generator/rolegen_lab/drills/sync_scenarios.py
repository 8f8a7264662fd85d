"""The partition matrix with witness replication sync (`rolegen lab up --sync`: each site names its peer's members
as synchronous standbys; docs/witness.md). What sync adds to the asynchronous matrix: an automatic failover loses
no acknowledged write at all (no loss window), and a cut tunnel stalls commits until the leader's guard has said
"unsynchronized" in the witness Lease and dropped the peer (a bounded outage, then no failover: the standby's guard
refuses on that Lease).
"""

from __future__ import annotations

from rolegen_lab.drills.steps import LEADER, STANDBY, Converge, Expect, Fault, Return, Scenario, Write
from rolegen_lab.drills.witness_scenarios import BOUND, NO_OUTAGE, QUIET
from rolegen_lab.witness_timers import TIMERS

# A cut tunnel: commits wait for the peer until the promise is older than stall_after (renew_every +
# request_timeout), then one renewal saying "unsynchronized" lands (a request), then ALTER SYSTEM and a reload;
# plus a look of the guard's loop and the writer's own retry.
DROP_BOUND = 2 * (TIMERS["renew_every"] + TIMERS["request_timeout"]) + 1.0

# Each shape starts once the Lease says the leader runs synchronized (a lab just up, or just failed back, says
# so a round after its peer caught up): a fault before that is the unsynchronized case, which refuses.
READY = Fault("await_synchronous")

SYNC: dict[str, Scenario] = {s.name: s for s in (
    Scenario("sync-leader-isolated",
             "{leader} cut from the witness and from {standby}: its commits wait for {standby}, its guard cannot "
             "say unsynchronized, so it never drops it; fenced; {standby}'s guard fails over losing nothing", (
        READY, Write(2.0), Fault("witness_cut", {"site": LEADER}), Fault("cut", mark="fault"),
        Converge(STANDBY, follower=False, mark="promoted"), Write(1.5),
        Fault("heal_all", mark="healed"), Converge(STANDBY), Write(1.0),
        Return(LEADER), Converge(LEADER), Write(0.5)),
        Expect(within=("fault", "promoted", BOUND)), automatic=True, replication="sync"),
    Scenario("sync-site-loss",
             "{leader} lost (members, API, tunnel): {standby}'s guard fails over losing nothing; {leader} restored "
             "fenced; failback", (
        READY, Write(2.0), Fault("lose", {"site": LEADER}, mark="fault"),
        Converge(STANDBY, follower=False, mark="promoted"), Write(1.5),
        Fault("restore", {"site": LEADER}), Converge(STANDBY), Write(1.0),
        Return(LEADER), Converge(LEADER), Write(0.5)),
        Expect(within=("fault", "promoted", BOUND)), automatic=True, replication="sync"),
    Scenario("sync-tunnel-cut",
             "the tunnel cut: {leader}'s commits wait until its guard says unsynchronized and drops {standby}, "
             f"then go on (an outage under {DROP_BOUND:g} s); {{standby}}'s guard refuses on that Lease: no failover; "
             "healed: {standby} confirms commits again", (
        READY, Write(1.5), Fault("cut", mark="fault"), Write(QUIET), Converge(LEADER, follower=False),
        Fault("heal"), Converge(LEADER), Write(3.0)),
        Expect(no_promotion_on=STANDBY, max_write_gap=DROP_BOUND), automatic=True, replication="sync"),
    Scenario("sync-witness-down",
             "the witness lost: {leader} runs on {standby}'s promises, {standby} still confirms every commit; no "
             "failover, no write outage", (
        READY, Write(1.5), Fault("witness_lose", mark="fault"), Write(QUIET), Converge(LEADER),
        Fault("witness_restore"), Write(1.0)),
        Expect(no_promotion_on=STANDBY, max_write_gap=NO_OUTAGE), automatic=True, replication="sync"),
)}

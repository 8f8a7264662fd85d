"""The partition matrix of automatic failover (issue 23), as drill scenarios for a lab with automatic failover
(`rolegen lab up --automatic`: the witness, the members' witness guards, a `rolegen guard` per site; lab timers
fence_after 8 s, margin 4 s, renew_every 2 s). Nobody runs a failover in these scenarios: the guards decide.

Each shape either must fail over on its own (the leader site cut from both partners, or lost) within
fence_after + 15 s of the fault, with what it lost reported inside its loss window (the asynchronous bound), or
must not fail over at all, without losing a write (one partner down, the tunnel alone, the standby isolated, the
leader's members crashing and restarting, its guard killed, a flapping tunnel, a skewed clock). Every scenario
returns to the baseline through `rolegen failback`. The bounds are part of each verdict (Expect.within,
max_write_gap, no_promotion_on).
"""

from __future__ import annotations

from dataclasses import replace

from rolegen_lab.drills.steps import EITHER, LEADER, STANDBY, Converge, Expect, Fault, Return, Scenario, Write
from rolegen_lab.witness_timers import TIMERS

QUIET = 18.0  # seconds of writing past promote_after (12 s on the lab): time enough for a wrong failover
BOUND = TIMERS["fence_after"] + 15  # an automatic failover completes within this of the fault (issue 23)
# No write outage: the longest gap between acknowledged commits stays under this. A stall lasts at least until
# the next answered round, a fence until a failover; a healthy lab shows under 0.1 s.
NO_OUTAGE = 2.0
FAILS_OVER = Expect(loss_window=("fault", "promoted"), within=("fault", "promoted", BOUND))
NO_FAILOVER = Expect(no_promotion_on=STANDBY, max_write_gap=NO_OUTAGE)
RESTARTS = Expect(no_promotion_on=STANDBY)  # no failover; the restart itself stops writes for a moment
FLAPS = 4  # cuts of 5 s (past wal_receiver_timeout, under fence_after) with 2 s between

AUTOMATIC: dict[str, Scenario] = {s.name: s for s in (
    Scenario("auto-leader-isolated",
             "{leader} cut from the witness and from {standby} (its witness link, then the tunnel): its guard stalls "
             "its commits and fences it; {standby}'s guard fails over on its own; healed; failback", (
        Write(2.0), Fault("witness_cut", {"site": LEADER}), Fault("cut", mark="fault"),
        Converge(STANDBY, follower=False, mark="promoted"), Write(1.5),
        Fault("heal_all", mark="healed"), Converge(STANDBY), Write(1.0),
        Return(LEADER), Converge(LEADER), Write(0.5)),
        FAILS_OVER, automatic=True),
    Scenario("auto-site-loss",
             "{leader} lost (members, API, tunnel): {standby}'s guard fails over on its own; {leader} restored "
             "(fenced by its guard's write, or its startup guard); failback", (
        Write(2.0), Fault("lose", {"site": LEADER}, mark="fault"),
        Converge(STANDBY, follower=False, mark="promoted"), Write(1.5),
        Fault("restore", {"site": LEADER}), Converge(STANDBY), Write(1.0),
        Return(LEADER), Converge(LEADER), Write(0.5)),
        FAILS_OVER, automatic=True),
    Scenario("auto-site-loss-silent",
             "{leader} lost behind a route that drops packets (its API accepts and never answers, as a data centre "
             "gone dark behind a VPN): {standby}'s guard fails over on its own within the bound all the same; "
             "{leader} restored; failback", (
        Write(2.0), Fault("lose", {"site": LEADER, "dark": True}, mark="fault"),
        Converge(STANDBY, follower=False, mark="promoted"), Write(1.5),
        Fault("restore", {"site": LEADER}), Converge(STANDBY), Write(1.0),
        Return(LEADER), Converge(LEADER), Write(0.5)),
        FAILS_OVER, automatic=True),
    Scenario("auto-witness-down",
             "the witness lost: {leader} runs on {standby}'s promises; no failover, no write outage", (
        Write(1.5), Fault("witness_lose", mark="fault"), Write(QUIET), Converge(LEADER),
        Fault("witness_restore"), Write(1.0)), NO_FAILOVER, automatic=True),
    Scenario("auto-tunnel-cut",
             "the tunnel cut (both ways): {leader} runs on the witness, {standby} sees its renewals; no failover", (
        Write(1.5), Fault("cut", mark="fault"), Write(QUIET), Converge(LEADER, follower=False),
        Fault("heal"), Converge(LEADER), Write(1.0)), NO_FAILOVER, automatic=True),
    Scenario("auto-leader-witness-link",
             "{leader}'s link to the witness cut: it runs on {standby}'s promises; no failover", (
        Write(1.5), Fault("witness_cut", {"site": LEADER}, mark="fault"), Write(QUIET), Converge(LEADER),
        Fault("witness_heal"), Write(1.0)), NO_FAILOVER, automatic=True),
    Scenario("auto-standby-isolated",
             "{standby} cut from the witness and the tunnel: {leader} runs on the witness; {standby} cannot take "
             "the Lease; no failover", (
        Write(1.5), Fault("witness_cut", {"site": STANDBY}), Fault("cut", mark="fault"), Write(QUIET),
        Converge(LEADER, follower=False), Fault("heal_all"), Converge(LEADER), Write(1.0)), NO_FAILOVER,
        automatic=True),
    Scenario("auto-asymmetric",
             "{standby} cut from the witness while {leader} reaches it, the tunnel up: no failover", (
        Write(1.5), Fault("witness_cut", {"site": STANDBY}, mark="fault"), Write(QUIET), Converge(LEADER),
        Fault("witness_heal"), Write(1.0)), NO_FAILOVER, automatic=True),
    Scenario("auto-crash-restart",
             "{leader}'s members SIGKILLed and restarted at once (a kubelet): they come back within fence_after; "
             "no failover", (
        Write(1.5), Fault("kill", {"site": LEADER}, mark="fault"), Write(QUIET), Converge(LEADER),
        Write(1.0)), RESTARTS, automatic=True),
    Scenario("auto-tunnel-flapping",
             f"the tunnel cut for 5 s and healed for 2 s, {FLAPS} times: each blip shorter than fence_after; "
             "{leader} runs on the witness; no failover, no write outage", (
        Write(1.5), Fault("cut", mark="fault"), Write(5.0),
        *(step for _ in range(FLAPS - 1) for step in (Fault("heal"), Write(2.0), Fault("cut"), Write(5.0))),
        Fault("heal"), Write(QUIET / 2), Converge(LEADER), Write(1.0)), NO_FAILOVER, automatic=True),
    Scenario("auto-guard-killed",
             "the tunnel cut, then {leader}'s leading member's witness guard SIGKILLed: its container ends with it "
             "(Patroni, PostgreSQL) and restarts, waiting for its peer; nothing renews the Lease until {leader}'s "
             "Patroni fails over inside the site, so either that comes first, or, past promote_after, {standby}'s "
             "guard fails over within the asynchronous bound; never both", (
        Write(1.5), Fault("cut", mark="fault"), Write(2.0), Fault("kill_guard", {"site": LEADER}), Write(QUIET),
        Converge(EITHER, follower=False), Fault("heal", mark="healed"), Converge(EITHER), Write(1.0),
        Return(LEADER), Converge(LEADER), Write(1.0)),
        # Writes resume within two failover bounds of the cut (the kill comes 2 s after it): one failover, in the
        # site or across, and its writer's reconnect. A Lease left unrenewed during the standby's failover steps
        # was taken back by the fenced site's guard: no site led for 52-63 s (bench, before the fix).
        Expect(loss_window=("fault", "healed"), max_write_gap=2 * BOUND), automatic=True),
    Scenario("auto-clock-skew",
             "{standby}'s guard's wall clock stepped 30 s ahead, then 30 s behind: it decides on observed change "
             "and its monotonic clock only; no failover, no write outage", (
        Write(1.5), Fault("skew", {"site": STANDBY, "seconds": 30}, mark="fault"), Write(QUIET),
        Fault("skew", {"site": STANDBY, "seconds": -30}), Write(QUIET), Fault("skew", {"site": STANDBY, "seconds": 0}),
        Converge(LEADER), Write(1.0)), NO_FAILOVER, automatic=True),
)}
# Their bounds are the asynchronous mode's (a tunnel cut stalls nothing): a lab with witness replication sync
# runs rolegen_lab.drills.sync_scenarios instead.
AUTOMATIC = {name: replace(s, replication="async") for name, s in AUTOMATIC.items()}

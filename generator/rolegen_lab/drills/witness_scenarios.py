"""The partition matrix of automatic failover (issue 23), as drill scenarios for a lab with automatic failover
(`rolegen lab up --automatic`: the witness, the members' witness guards, a `rolegen guard` per site; lab timers
fence_after 8 s, margin 4 s, renew_every 2 s). Nobody runs a failover in these scenarios: the guards decide.

Each shape either must fail over on its own (the leader site cut from both partners, or lost) within
fence_after + 15 s of the fault, with what it lost reported inside its loss window (the asynchronous bound), or
must not fail over at all, without losing a write (one partner down, the tunnel alone, the standby isolated, the
leader's members crashing and restarting). Every scenario returns to the baseline through `rolegen failback`.
"""

from __future__ import annotations

from rolegen_lab.drills.scenarios import (
    LEADER,
    STANDBY,
    Converge,
    Expect,
    Fault,
    Return,
    Scenario,
    Write,
)

QUIET = 18.0  # seconds of writing past promote_after (12 s on the lab): time enough for a wrong failover

AUTOMATIC: dict[str, Scenario] = {s.name: s for s in (
    Scenario("auto-leader-isolated",
             "{leader} cut from the witness and from {standby} (its witness link, then the tunnel): its guard stalls "
             "its commits and fences it; {standby}'s guard fails over on its own; healed; failback", (
        Write(2.0), Fault("witness_cut", {"site": LEADER}), Fault("cut", mark="fault"),
        Converge(STANDBY, follower=False, mark="promoted"), Write(1.5),
        Fault("heal_all", mark="healed"), Converge(STANDBY), Write(1.0),
        Return(LEADER), Converge(LEADER), Write(0.5)),
        Expect(loss_window=("fault", "promoted")), automatic=True),
    Scenario("auto-site-loss",
             "{leader} lost (members, API, tunnel): {standby}'s guard fails over on its own; {leader} restored "
             "(fenced by its guard's write, or its startup guard); failback", (
        Write(2.0), Fault("lose", {"site": LEADER}, mark="fault"),
        Converge(STANDBY, follower=False, mark="promoted"), Write(1.5),
        Fault("restore", {"site": LEADER}), Converge(STANDBY), Write(1.0),
        Return(LEADER), Converge(LEADER), Write(0.5)),
        Expect(loss_window=("fault", "promoted")), automatic=True),
    Scenario("auto-witness-down",
             "the witness lost: {leader} runs on {standby}'s promises; no failover, no write outage", (
        Write(1.5), Fault("witness_lose", mark="fault"), Write(QUIET), Converge(LEADER),
        Fault("witness_restore"), Write(1.0)), automatic=True),
    Scenario("auto-tunnel-cut",
             "the tunnel cut (both ways): {leader} runs on the witness, {standby} sees its renewals; no failover", (
        Write(1.5), Fault("cut", mark="fault"), Write(QUIET), Converge(LEADER, follower=False),
        Fault("heal"), Converge(LEADER), Write(1.0)), automatic=True),
    Scenario("auto-leader-witness-link",
             "{leader}'s link to the witness cut: it runs on {standby}'s promises; no failover", (
        Write(1.5), Fault("witness_cut", {"site": LEADER}, mark="fault"), Write(QUIET), Converge(LEADER),
        Fault("witness_heal"), Write(1.0)), automatic=True),
    Scenario("auto-standby-isolated",
             "{standby} cut from the witness and the tunnel: {leader} runs on the witness; {standby} cannot take "
             "the Lease; no failover", (
        Write(1.5), Fault("witness_cut", {"site": STANDBY}), Fault("cut", mark="fault"), Write(QUIET),
        Converge(LEADER, follower=False), Fault("heal_all"), Converge(LEADER), Write(1.0)), automatic=True),
    Scenario("auto-asymmetric",
             "{standby} cut from the witness while {leader} reaches it, the tunnel up: no failover", (
        Write(1.5), Fault("witness_cut", {"site": STANDBY}, mark="fault"), Write(QUIET), Converge(LEADER),
        Fault("witness_heal"), Write(1.0)), automatic=True),
    Scenario("auto-crash-restart",
             "{leader}'s members SIGKILLed and restarted at once (a kubelet): they come back within fence_after; "
             "no failover", (
        Write(1.5), Fault("kill", {"site": LEADER}, mark="fault"), Write(QUIET), Converge(LEADER),
        Write(1.0)), automatic=True),
)}


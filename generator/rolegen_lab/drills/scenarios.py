"""The suite's drill scenarios (`rolegen lab drill NAME`), written in the steps of rolegen_lab.drills.steps; the
witness's partition matrix is in witness_scenarios and sync_scenarios.

Every scenario starts from and returns to the baseline (the leader leads, the standby follows). The expectations
encode the fault model's promise: no acknowledged write lost outside the scenario's loss window (the only one is a
site loss, whose unshipped writes asynchronous replication cannot keep), no timeline number selected on both
sites, never two writable primaries, and every rolegen run ending converged or with an error naming the next
command.
"""

from __future__ import annotations

from rolegen_lab.drills.steps import (
    LEADER,
    STANDBY,
    Answer,
    Concurrent,
    Converge,
    Cue,
    DrSlot,
    Expect,
    ExpectConfig,
    Fault,
    FollowHint,
    Render,
    Return,
    Rolegen,
    Scenario,
    WaitNoLeader,
    Write,
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("switchover", "planned switchover there and back under load", (
        Write(1.5), Rolegen("switchover", STANDBY), Converge(STANDBY),
        Write(1.0), Rolegen("switchover", LEADER), Converge(LEADER), Write(0.5))),
    Scenario("crash-restart-failover",
             "{leader}'s members SIGKILLed and restarted at once (a kubelet); failover to {standby}; failback to "
             "{leader}", (
        Write(1.5), Fault("kill", {"site": LEADER}, mark="fault"), WaitNoLeader(LEADER),
        Rolegen("failover", STANDBY, expect="safe"), FollowHint(),
        Write(1.0), Return(LEADER), Converge(LEADER), Write(0.5))),
    Scenario("site-loss-failover",
             "{leader} dark (members down, API down, tunnel cut); failover; {leader}'s API returns; failover re-run "
             "fences; members return; failback", (
        Write(1.5), Fault("lose", {"site": LEADER}, mark="fault"),
        Rolegen("failover", STANDBY, mark="promoted"), Converge(STANDBY, follower=False), Write(1.0),
        Fault("restore", {"site": LEADER, "api_only": True}), Rolegen("failover", STANDBY),
        Fault("restore", {"site": LEADER}), Converge(STANDBY), Write(1.0),
        Rolegen("failback", LEADER), Converge(LEADER), Write(0.5)),
        Expect(loss_window=("fault", "promoted"))),
    Scenario("tunnel-cut",
             "tunnel cut both ways with both APIs up while writing; a switchover during the cut must refuse or roll "
             "back; heal; switchover there and back", (
        Write(1.0), Fault("cut", mark="cut"), Write(1.0),
        Rolegen("switchover", STANDBY, expect="error", timeout=15), Write(0.5),
        Fault("heal", mark="healed"), Converge(LEADER),
        Rolegen("switchover", STANDBY), Converge(STANDBY), Rolegen("switchover", LEADER), Converge(LEADER),
        Write(0.5))),
    # Patroni is paused on every member of the leader site, not only on its leading member: a lone hung leader is
    # replaced inside its site by its replica once the lock expires (Patroni without a watchdog), leaving two
    # writable primaries there that no cross-site procedure can prevent; this scenario is about what rolegen does
    # next to a hung site.
    Scenario("hung-patroni",
             "Patroni SIGSTOPped on every {leader} member ({leader}'s PostgreSQL primary keeps running); once "
             "{leader}'s leader lock expired, failover to {standby} must refuse while {leader} may still take "
             "writes; resume; the failover re-run as its hint says; back to {leader}", (
        Write(1.0), Fault("pause", {"site": LEADER}, mark="fault"), WaitNoLeader(LEADER),
        Rolegen("failover", STANDBY, expect="error", timeout=10), Write(0.5),
        Fault("resume", {"site": LEADER}, mark="resumed"), FollowHint(),
        Return(LEADER), Converge(LEADER), Write(0.5))),
    # A clean shutdown is the switchover's early proof only while Patroni says `stopping` (a demotion): a restart
    # also shuts PostgreSQL down cleanly, then starts it again as the primary it was.
    Scenario("restart-at-demotion",
             "switchover --to {standby} while {leader}'s leader is restarted by its Patroni (patronictl restart) as "
             "the demotion is written: a clean shutdown that comes back a primary must not let the gate pass early; "
             "and back", (
        Write(1.5), Rolegen("switchover", STANDBY, expect="safe", during=(
            Cue(Fault("restart_postgres", {"site": LEADER}), on_output="Demote {leader}"),)),
        FollowHint(), Converge(STANDBY), Write(1.0), Rolegen("switchover", LEADER), Converge(LEADER), Write(0.5))),
    Scenario("killed-rolegen", "switchover SIGKILLed at 0.7, 1.5 and 2.5 s, re-run until it converges; and back", (
        Write(1.0), Rolegen("switchover", STANDBY, kill_after=(0.7, 1.5, 2.5)), Converge(STANDBY),
        Write(0.5), Rolegen("switchover", LEADER, kill_after=(1.0,)), Converge(LEADER), Write(0.5))),
    # -- the operator's partial view, a returning site, what an operator does by hand (issue #21, item 7) --------
    Scenario("operator-partition",
             "only the operator's route to {leader}'s API is down (refused, then slow past kubectl's timeout), "
             "{leader} healthy, tunnel up, {standby} streaming from {leader}: failover --to {standby} must refuse "
             "each time; nothing is promoted", (
        Write(1.5), Fault("api_cut", {"site": LEADER}, mark="cut"),
        Rolegen("failover", STANDBY, expect="error", timeout=20), Write(1.0),
        Fault("api_slow", {"site": LEADER}), Rolegen("failover", STANDBY, expect="error", timeout=20),
        Write(0.5), Fault("api_heal", mark="healed"), Converge(LEADER), Write(0.5))),
    Scenario("flaky-api",
             "the operator's API connections fail at random (rate 0.3: resets, HTTP 503) from the first runbook "
             "step of a failover ({leader} lost: catch-up), a failback (from its rewind) and a reseed: each run "
             "completes or stops naming the next command; never a promotion or a wipe on an unclassified error", (
        Write(1.5), Fault("lose", {"site": LEADER}, mark="fault"),
        Rolegen("failover", STANDBY, expect="safe", mark="promoted", during=(
            Cue(Fault("api_flaky", {"site": STANDBY, "rate": 0.3}), on_output="Preflight"),)),
        Fault("api_heal"), FollowHint(), Converge(STANDBY, follower=False),
        Write(1.0), Fault("restore", {"site": LEADER, "api_only": True}), Rolegen("failover", STANDBY),
        Fault("restore", {"site": LEADER}), Converge(STANDBY), Write(1.0),
        Rolegen("failback", LEADER, expect="safe", during=(
            Cue(Fault("api_flaky", {"site": LEADER, "rate": 0.3}), on_output="Rewind"),
            Cue(Fault("api_flaky", {"site": STANDBY, "rate": 0.3}), on_output="Rewind"))),
        Fault("api_heal"), FollowHint(), Return(LEADER), Converge(LEADER), Write(1.0),
        Rolegen("reseed", STANDBY, expect="safe", during=(
            Cue(Fault("api_flaky", {"site": LEADER, "rate": 0.3}), on_output="Preflight"),
            Cue(Fault("api_flaky", {"site": STANDBY, "rate": 0.3}), on_output="Preflight"))),
        Fault("api_heal"), FollowHint(), Converge(LEADER), Write(0.5)),
        Expect(loss_window=("fault", "promoted"))),
    Scenario("returning-site",
             "{leader} lost; failover to {standby}; {leader}'s members cold-start while the tunnel stays cut for "
             "12 s (the site hosting the tunnel back before it): {leader} must not start as a second primary; "
             "fence, failback", (
        Write(1.5), Fault("lose", {"site": LEADER}, mark="fault"),
        Rolegen("failover", STANDBY, mark="promoted"), Converge(STANDBY, follower=False), Write(1.0),
        Fault("restore", {"site": LEADER, "tunnel_after": 12}, mark="returned"), Write(17.0),
        Rolegen("failover", STANDBY, expect="safe"), FollowHint(), Converge(STANDBY), Write(1.0),
        Return(LEADER), Converge(LEADER), Write(0.5)),
        Expect(loss_window=("fault", "promoted"))),
    Scenario("paused-patroni",
             "{leader}'s Patroni in maintenance mode (`patronictl pause`: pause: true in its DCS config); "
             "switchover --to {standby} must refuse before writing anything; resume; {leader} still leads, "
             "{standby} streams", (
        Write(1.0), Fault("maintenance", {"site": LEADER}, mark="paused"),
        Rolegen("switchover", STANDBY, expect="error", timeout=20),
        # Refused before any write: the leader's DCS config still leads, the standby still streams through its slot.
        ExpectConfig(LEADER, {"standby_cluster": None}),
        ExpectConfig(STANDBY, {"standby_cluster": {"primary_slot_name": DrSlot(STANDBY)}}), Write(0.5),
        Fault("maintenance", {"site": LEADER, "on": False}, mark="resumed"), Converge(LEADER), Write(0.5))),
    # 300 ms of WAN latency on the tunnel, so the old leader still holds WAL its peer has not received when its
    # Pod goes: once while the switchover waits for the LSN gate, once as the demotion is written (before the
    # demoted leader can publish its final position).
    Scenario("recreated-pod",
             "tunnel with 300 ms latency; switchover --to {standby} with {leader}'s old leader Pod force-deleted "
             "(recreated by its StatefulSet, restartCount 0) during the LSN gate; switchover back with "
             "{standby}'s leader Pod force-deleted as it is demoted: no acknowledged write lost", (
        # New WAN settings drop the tunnel's connections once: wait until the standby streams again (else the
        # switchover's preflight refuses and nothing is exercised).
        Fault("wan", {"latency_ms": 300}), Converge(LEADER), Write(1.5),
        Rolegen("switchover", STANDBY, expect="safe", during=(
            Cue(Fault("delete_pod", {"site": LEADER, "member": "leader"}), on_output="Wait for the LSN gate"),)),
        FollowHint(), Converge(STANDBY), Write(1.5),
        Rolegen("switchover", LEADER, expect="safe", during=(
            # the runbook step's title names the site being demoted: resolved with the scenario
            Cue(Fault("delete_pod", {"site": STANDBY, "member": "leader"}), on_output="Demote {standby}"),)),
        FollowHint(), Fault("wan"), Return(LEADER), Converge(LEADER), Write(0.5))),
    Scenario("apply-race",
             "apply with a hand-set key in {leader}'s DCS config and a spec change that makes Helm run: the key "
             "survives; then the apply runbook of a role change (demote {leader} by apply, declare {standby} "
             "leader) whose prompt is answered only after a colleague (own clone) ran failover --to {leader}: "
             "{standby} must not become a second primary; the specs then take the colleague's roles", (
        Write(1.0),
        Fault("edit_config", {"site": LEADER, "patch": {"postgresql": {"parameters": {"work_mem": "7MB"}}}}),
        Fault("edit_config", {"site": LEADER, "patch": {"failsafe_mode": True}}),
        Render(LEADER, "leader", {"tsc": {"monitor": {"interval": 11}}}),  # values change: Helm runs
        Rolegen("apply", LEADER),
        ExpectConfig(LEADER, {"postgresql": {"parameters": {"work_mem": "7MB"}}, "failsafe_mode": True}),
        Render(LEADER, "standby-leader"), Rolegen("apply", LEADER, expect="safe"),
        Render(STANDBY, "leader"),
        Rolegen("apply", STANDBY, expect="safe", yes=False, during=(
            Cue(Rolegen("failover", LEADER, expect="safe", workspace="colleague"),
                on_output="Apply these changes"),
            Cue(Answer("y"), on_output="Apply these changes"))),
        Write(2.0), Render(STANDBY, "standby-leader"), Render(LEADER, "leader"),  # take the colleague's roles
        Return(LEADER), Converge(LEADER),
        # the spec edit undone and applied, so the next run's edit makes Helm run again
        Render(LEADER, "leader", {"tsc": {"monitor": {"interval": 10}}}), Rolegen("apply", LEADER),
        Converge(LEADER), Write(0.5))),
    Scenario("concurrent-rolegen",
             "two switchovers to {standby} at once: one fails naming the lease holder, the other completes; and "
             "back", (
        Write(1.0), Concurrent((Rolegen("switchover", STANDBY), Rolegen("switchover", STANDBY))),
        Converge(STANDBY), Write(0.5), Rolegen("switchover", LEADER), Converge(LEADER), Write(0.5))),
)}

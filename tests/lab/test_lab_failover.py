"""Unplanned failover, fencing and failback on the lab, with a writer recording acknowledged commits."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import history_alone, lab_cluster, member_dsn
from conftest import lab_pair as pair
from rolegen.cli import app
from rolegen.cluster.storage import Storage
from rolegen.commands import roles, status
from rolegen.errors import RolegenError
from rolegen.offline.workspace import load_workspace
from rolegen.procedures import failback, failover
from rolegen.procedures.base import Pair
from rolegen.procedures.rules import ahead_of_holder
from rolegen_lab.drills.workload import AckWriter, is_writable, missing_ids
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab


def no_confirm(_: str) -> None:
    return None


def declared(lab: Lab) -> dict[str, str]:
    return {name: spec.role for name, spec in load_workspace(lab.env_dir).specs.items()}


def never_writable(lab: Lab, env: str, seconds: float) -> int:
    """Poll every member of `env` for `seconds`; fail on the first one that takes a write. Returns polls made."""
    polls = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for ordinal, member in lab.sites[env].members.items():
            if member.running:
                polls += 1
                assert not is_writable(member_dsn(lab, env, ordinal)), f"{member.name} of {env} accepted a write"
        time.sleep(0.3)
    return polls


# The hard failure (gold dark, failover, API back, the re-run fences, members back, failback) is the drill
# `site-loss-failover`, with the drills' writer and oracle; these are the paths no drill takes.
def test_old_site_restarted_without_rolegen_never_accepts_a_write(lab: Lab) -> None:
    gold = lab.sites["gold"]
    gold.fail()
    result = failover.run(pair(lab, "golddr"), confirm=no_confirm)
    assert result.promoted and not result.fenced
    # The platform brings gold back before anyone runs rolegen: its DCS config still declares leader.
    gold.restore_api()
    gold.resume_members()
    assert never_writable(lab, "gold", 10) > 0
    lab.wait_role("gold", "standby-leader", 90)  # the startup guard fenced it: it follows golddr
    logs = "".join(m.log_tail(100000) for m in gold.members.values())
    assert "startup-guard: decision=fence" in logs
    # rolegen never observed gold's members under a fence before golddr's promotion, and a member may have
    # promoted on the same timeline number before its guard or a sibling's fenced it: nothing proves gold
    # followed golddr. status says so; failback re-seeds rather than trusting it.
    status = _status(lab)
    [gold_status] = [s for s in status.sites if s.environment == "gold"]
    assert gold_status.diverged is not None and not status.healthy
    # The guard's fence is the rendered standby config: gold streams through the DR slot golddr keeps for it.
    assert gold_status.state is not None and gold_status.state.config is not None
    peer = load_workspace(lab.env_dir).specs["gold"].peer
    assert gold_status.state.config["standby_cluster"] == {"host": peer.host, "port": peer.port,
                                                           "primary_slot_name": "gold"}
    back = failback.run(pair(lab, "gold"), method="auto", confirm=no_confirm, timeout=180)
    assert back.method == "reseed" and "nothing proves" in back.reason
    lab.wait_role("gold", "leader")
    # Healthy once the re-seeded golddr streams from gold again (status counts a standby that does not stream).
    deadline = time.monotonic() + 60
    while (problems := _status(lab).problems) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert problems == []


def published(lab: Lab, env: str, timeout: float = 60) -> Storage:
    """The storage figures `env`'s leading member published on its Pod (files/member_figures.py, forked by the
    startup guard every figuresEvery seconds), once there are."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        moving = pair(lab, env)
        member = moving.read(moving.to).leader_member
        if member is not None and member.storage is not None:
            return member.storage
        time.sleep(0.5)
    raise AssertionError(f"{env}'s leading member published no storage figures within {timeout:.0f}s")


def test_a_promoted_standby_site_keeps_no_dr_slot_wal_from_before_the_divergence(lab: Lab) -> None:
    """The chart's on_role_change (files/dr_slot.py) on the member that led the standby cluster: once promoted, the
    slot it keeps for the old site reserves nothing before the divergence's WAL segment, so a failback by
    pg_rewind does not copy that WAL; a failover inside a site leaves the slot alone (tested in test_dr_slot).
    Before it, `failback --dry-run` predicts what each repair would move from the figures the real members
    published (the old leader's before it failed)."""
    gold, golddr = lab.sites["gold"], lab.sites["golddr"]
    with psycopg_connect(lab.dsn("gold")) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS dr_slot_rows (v int)")
        conn.execute("INSERT INTO dr_slot_rows SELECT generate_series(1, 20000)")  # WAL golddr replays first
    assert not published(lab, "gold").in_recovery
    gold.fail()
    failover.run(pair(lab, "golddr"), confirm=no_confirm)
    released = ("dr_slot: gold advanced", "dr_slot: gold left as it is (released")

    def judged() -> bool:
        return any(line in m.log_tail(200000) for m in golddr.members.values() for line in released)

    golddr.wait(judged, 60, "the DR slot callback's verdict on golddr's new leader")
    with psycopg_connect(lab.dsn("golddr")) as conn:
        timeline = conn.execute("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)").fetchone()[0]
        history = conn.execute("SELECT pg_read_file(%s)", (f"pg_wal/{timeline}.history",)).fetchone()[0]
        switch = history.strip().splitlines()[-1].split()[1]
        restart, divergence = conn.execute(
            "SELECT substr(pg_walfile_name(restart_lsn), 9), substr(pg_walfile_name(%s::pg_lsn - 1), 9)"
            " FROM pg_replication_slots WHERE slot_name = 'gold' AND NOT active", (switch,)).fetchone()
    assert restart == divergence, (restart, divergence)  # the slot starts at the divergence's segment
    # gold comes back, fenced, and fails back by rewind from golddr's WAL without what was released: a writer on
    # both sites counts what they acknowledged, and none of it may be lost.
    gold.restore_api()
    failover.run(pair(lab, "golddr"), confirm=no_confirm)  # fences gold now that its API answers
    published(lab, "golddr")
    predicted = roles.run_failback(lab.env_dir, roles.RoleOptions(to="gold", dry_run=True, kubeconfig=lab.kubeconfig),
                                   "auto", lambda _: False, lambda _: None).prediction
    with psycopg_connect(lab.dsn("golddr")) as conn:
        databases = int(conn.execute("SELECT sum(pg_database_size(oid)) FROM pg_database").fetchone()[0])
    assert predicted is not None and predicted.why == (), predicted
    assert predicted.source in {m.name for m in golddr.members.values()}, predicted
    assert predicted.target in {m.name for m in gold.members.values()}, predicted
    assert predicted.reseed is not None and abs(predicted.reseed - databases) < databases * 0.05
    assert predicted.rewind is not None and predicted.source_wal is not None
    assert predicted.rewind >= predicted.source_wal >= 16 << 20  # at least the segment golddr writes into
    # `rolegen status` shows the same figures, read from the real Pods, and serves them as metrics
    seen = status.run(lab.env_dir, lab.kubeconfig)
    lead = next(m for s in seen.sites if s.state and s.environment == "golddr" for m in s.state.members
                if m.name == predicted.source)
    assert lead.storage is not None and lead.storage.data_bytes == predicted.reseed
    assert f'rolegen_member_database_bytes{{member="{lead.name}",site="golddr"}} {predicted.reseed}' in seen.metrics()
    gold.resume_members()
    with AckWriter([lab.dsn("gold"), lab.dsn("golddr")], interval=0.01) as writer:
        back = failback.run(pair(lab, "gold"), method="rewind", confirm=no_confirm, timeout=180)
        lab.wait_role("gold", "leader")
    assert back.method == "rewind"
    assert writer.log.acknowledged and missing_ids(lab.dsn("gold"), writer.log.acknowledged) == []


def test_a_switchover_inside_the_leading_site_leaves_the_dr_slot_alone(lab: Lab) -> None:
    """A replica promoted inside gold (a new timeline there): golddr, the standby site, may lag behind that switch
    and still need the WAL before it, so the callback leaves gold's DR slot as it is."""
    gold = lab.sites["gold"]

    def verdicts() -> dict[str, list[str]]:
        return {m.name: [line for line in m.log_tail(400000).splitlines() if line.startswith("dr_slot: ")]
                for m in gold.members.values()}

    gold.wait(lambda: any(s.get("role") == "replica" and "streaming" in (s.get("replication_state"), s.get("state"))
                          for s in gold.member_states().values()), 90, "a gold replica streaming: a candidate")
    before = verdicts()
    _switch_inside(lab, "gold")
    lab.wait_role("gold", "leader", 60)

    def new() -> list[str]:
        return [line for name, lines in verdicts().items() for line in lines[len(before[name]):]]

    gold.wait(lambda: bool(new()), 30, "the DR slot callback's verdict on gold's new leader")
    assert new() == ["dr_slot: golddr left as it is (a promotion inside a primary cluster: the other site may still "
                     "need that WAL)"]


def _status(lab: Lab):  # type: ignore[no-untyped-def]
    from rolegen.commands import status

    return status.run(lab.env_dir, lab.kubeconfig)


def test_crash_and_restart_during_failover_loses_no_acknowledged_write(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure that lost a quarter of the writes: the old site's members crash and the platform restarts
    them at once while the operator fails over. Fence first: they return as standbys with their data, the
    target replays it, then it is promoted."""
    gold = lab.sites["gold"]
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    with AckWriter([lab.dsn("gold"), lab.dsn("golddr")]) as writer:
        time.sleep(1)
        log: list[str] = []
        for _ in range(5):
            for member in list(gold.members.values()):
                member.kill()  # the lab's kubelet restarts them within a second
            try:
                # As the CLI runs it (its lease, its Events and history record): its history is checked below.
                result = _cli_run(lab, "failover", "golddr", log)
                break
            except RolegenError as exc:
                # gold came back leading before rolegen looked (a restart with its session lock), or between its
                # look and its recheck after the confirmation: refusing is right, and nothing was changed; strike
                # again, as the operator's next attempt would.
                assert "alive and leading" in exc.message or (
                    "changed while the prompt waited" in exc.message and "refuse-healthy" in exc.message
                    and "nothing was changed" in exc.message), exc.message
                assert declared(lab) == {"gold": "leader", "golddr": "standby-leader"}
                time.sleep(1)
        else:
            pytest.fail("gold always came back leading before the failover looked")
        assert result.decision == "fence-first" and result.promoted and result.fenced, log
        lab.wait_role("golddr", "leader")
        assert never_writable(lab, "gold", 3) > 0
        time.sleep(0.5)
    assert len(writer.log.acknowledged) > 100
    assert missing_ids(lab.dsn("golddr"), writer.log.acknowledged) == []
    states = {name: pair(lab, name).read(spec) for name, spec in load_workspace(lab.env_dir).specs.items()}
    gold_timelines = {m.timeline for m in states["gold"].members}
    promotion = states["golddr"].records.promotion or {}
    assert promotion.get("fenced_first") is True
    fence = states["gold"].records.fence or {}
    assert fence.get("promotion") == promotion.get("id") and fence.get("writers") == [], fence
    assert max(t for t in gold_timelines if t) <= (promotion.get("timeline") or 0)
    printed = failback.dry_run(pair(lab, "gold")).splitlines()
    numbered = [re.match(r"(\d+)\. (.*)", line) for line in printed]
    steps = {int(m[1]): m[2] for m in numbered if m}
    # The failback dies right after its switch back demoted golddr (nobody leads), then is re-run as its hint
    # says: it resumes the switch back and repairs nothing (a 503 at "Promote gold" left this state in CI).
    killed_log, resumed_log = [], []
    original_mark = Pair.mark

    def die(self: Pair, event: str) -> None:
        original_mark(self, event)
        if event == "demoted":
            raise Killed(event)

    monkeypatch.setattr(Pair, "mark", die)
    with pytest.raises(Killed):
        failback.run(pair(lab, "gold", killed_log), method="rewind", confirm=no_confirm)
    monkeypatch.setattr(Pair, "mark", original_mark)
    # Nobody leads: golddr proved its own clean shutdown (its Patroni may still call it primary for the two
    # seconds its demotion goes on), gold is a standby. Neither site's members take a write.
    assert lab.patroni_role("gold") != "leader"
    assert never_writable(lab, "golddr", 1) > 0 and never_writable(lab, "gold", 0.3) > 0
    back = _cli_run(lab, "failback", "gold", resumed_log)
    assert (back.method, back.reason) == ("", "resumed the switch back")
    lab.wait_role("gold", "leader")
    # One runbook, one numbering: each step a run logged is the dry-run's step of that number, the handover's
    # steps included (the re-seed, not chosen, is skipped; the resumed run skips the repair).
    def ran(log: list[str]) -> list[tuple[int, int, str]]:
        logged = [re.match(r"\[(\d+)/(\d+)\] (.*)", line) for line in log]
        return [(int(m[1]), int(m[2]), m[3]) for m in logged if m]

    assert [n for n, _, _ in ran(killed_log)] == [1, 2, 3, 5, 6]
    assert [n for n, _, _ in ran(resumed_log)] == [1, 5, 6, 7, 8, 9, 10]
    for n, total, title in ran(killed_log) + ran(resumed_log):
        assert total == len(steps) == 10 and steps[n].startswith(title), (n, title, steps)
    assert ran(resumed_log)[-1][2] == "Record the new roles"
    assert missing_ids(lab.dsn("gold"), writer.log.acknowledged) == []
    # `rolegen history` from either site alone (the other's API cut) shows both, with the LSN at each gate (the
    # killed failback left none: it ran without the CLI; a failover refused between strikes is `refused`).
    for cut, alone in (("gold", "golddr"), ("golddr", "gold")):
        mine = [r for r in history_alone(lab, cut, alone) if r["started"] >= started and r["outcome"] != "refused"]
        assert [(r["verb"], r["from"], r["to"], r["outcome"], r["sites"]) for r in mine] == [
            ("failover", "gold", "golddr", "ok", [alone]), ("failback", "golddr", "gold", "ok", [alone])], mine
        assert 0 < mine[0]["lsn"] < mine[1]["lsn"], mine  # golddr took writes between the two gates


def _cli_run(lab: Lab, verb: str, to: str, log: list[str]) -> Any:
    """`rolegen failover|failback --to TO --yes` as the CLI runs it (rolegen.commands.roles): the procedure's
    result."""
    if verb == "failover":
        return roles.run_failover(lab.env_dir, roles.RoleOptions(to, kubeconfig=lab.kubeconfig, timeout=90), _yes,
                                  log.append).outcome
    return roles.run_failback(lab.env_dir, roles.RoleOptions(to, kubeconfig=lab.kubeconfig), "rewind", _yes,
                              log.append).outcome


def _yes(_: str) -> bool:
    return True


class Killed(BaseException):
    pass


def _switch_inside(lab: Lab, env: str) -> None:
    """A site-local Patroni switchover (a new timeline) through the leader member's REST API."""
    import json
    import urllib.error
    import urllib.request

    site = lab.sites[env]
    deadline, answer = time.monotonic() + 60, ""
    while time.monotonic() < deadline:
        leader = next(m for m in site.members.values() if m.running and m.rest("/leader")[0] == 200)
        candidate = next(m for m in site.members.values() if m.running and m is not leader)
        body = json.dumps({"leader": leader.name, "candidate": candidate.name}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{leader.rest_port}/switchover", data=body, method="POST",
                                     headers=lab.rest_auth())  # unsafe endpoint: the REST Secret's credentials
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:  # candidate not ready yet (e.g. still recovering)
            answer = exc.read().decode(errors="replace")
            exc.close()
        time.sleep(2)
    pytest.fail(f"site-local switchover on {env} refused: {answer}")


def test_same_timeline_split_brain_is_detected_and_reseeded(lab: Lab) -> None:
    gold, golddr = lab.sites["gold"], lab.sites["golddr"]
    gold.fail()
    failover.run(pair(lab, "golddr"), confirm=no_confirm)  # golddr on a new timeline; gold's fence pending
    with AckWriter([lab.dsn("golddr")]) as writer:  # the right side's writes: none may be lost
        # gold comes back while the tunnel is down both ways: its startup guard cannot ask golddr, starts as
        # the DCS config says, and gold runs as a primary; a local switchover then puts it on a new timeline
        # whose number golddr already used.
        golddr.tunnel.partition()
        gold.restore_api()
        # gold hosts the tunnel, so its guard waits by default (the test below); here gold's operator chose
        # availability first: `startup_guard: {peer_unreachable: start, unreachable_grace: 0}`.
        restore_guard = _guard_policy(lab, "gold", GUARD_PEER_UNREACHABLE="start", GUARD_UNREACHABLE_GRACE="0")
        restored = False
        try:
            gold.resume_members()
            lab.wait_role("gold", "leader", 90)
            gold.wait(lambda: sum(m.rest("/health")[0] == 200 for m in gold.members.values()) == 2, 60, "both up")
            gold.wait(lambda: any(s.get("role") == "replica"
                                  and "streaming" in (s.get("replication_state"), s.get("state"))
                                  for s in gold.member_states().values()), 60, "a gold replica streaming: a candidate")
            _switch_inside(lab, "gold")
            lab.wait_role("gold", "leader", 60)
            with psycopg_connect(lab.dsn("gold")) as conn:
                conn.execute("CREATE TABLE split_brain_rows (v text)")
                conn.execute("INSERT INTO split_brain_rows VALUES ('written on the wrong side')")
            golddr.tunnel.heal()

            log: list[str] = []
            restore_guard()  # the re-seed recreates gold's Pods: with the bundled policy again
            restored = True
            result = failback.run(pair(lab, "gold", log), method="auto", confirm=no_confirm, timeout=180)
            lab.wait_role("gold", "leader")
        finally:
            # The lab is shared with the next modules (the drills): never leave gold starting unguarded.
            if not restored:
                restore_guard()
            _guard_policy(lab, "gold", rolling=True)
    assert result.method == "reseed"
    assert "the same timeline number was used twice" in result.reason or "past golddr's" in result.reason
    assert missing_ids(lab.dsn("gold"), writer.log.acknowledged) == []
    with psycopg_connect(lab.dsn("gold")) as conn:
        assert conn.execute("SELECT to_regclass('split_brain_rows')").fetchone() == (None,)
    assert declared(lab) == {"gold": "leader", "golddr": "standby-leader"}


def psycopg_connect(dsn: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def _guard_policy(lab: Lab, env: str, rolling: bool = False, **guard_env: str) -> Callable[[], None]:
    """Run `env`'s members with other GUARD_* values (their Pods are recreated now, held ones start later);
    the StatefulSet rolls only on delete meanwhile. Returns what puts the rendered values back; `rolling=True`
    puts back the rolling update."""
    cluster = lab_cluster(lab, env)
    name = lab.sites[env].release
    if rolling:
        cluster.kubectl("patch", "statefulset", name, "--type", "merge", "-p",
                        json.dumps({"spec": {"updateStrategy": {"type": "RollingUpdate"}}}))
        return lambda: None
    sts = cluster.get("statefulset", name) or {}
    container = sts["spec"]["template"]["spec"]["containers"][0]
    before = {e["name"]: e["value"] for e in container["env"] if e["name"] in guard_env}

    def patch(values: dict[str, str]) -> None:
        env_list = [{"name": k, "value": v} for k, v in values.items()]
        body = {"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": None},
                         "template": {"spec": {"containers": [{"name": container["name"], "env": env_list}]}}}}
        cluster.kubectl("patch", "statefulset", name, "--type", "strategic", "-p", json.dumps(body))

    patch(guard_env)
    selector = ",".join(f"{k}={v}" for k, v in sts["spec"]["selector"]["matchLabels"].items())
    cluster.kubectl("delete", "pod", "-l", selector, "--grace-period=0", "--force", "--wait=true")
    return lambda: patch(before)


def test_a_target_whose_lock_holder_lags_its_old_primary_is_promoted_only_once_the_primary_leads_it(
        lab: Lab) -> None:
    """chaos seed 484: gold's primary is killed and kept down; a failover to golddr fences gold and refuses (gold's
    last position is unknown), while gold's replica takes gold's lock as its standby leader. The old primary comes
    back past it (at least its crash recovery's checkpoint; at worst commits it acknowledged alone). A failover to
    gold must not promote the replica, which would rewind that WAL away; once the replica's Pod is deleted as the
    hint says, the old primary leads gold, and the failover promotes it: no write gold acknowledged is lost."""
    gold = pair(lab, "gold")
    with AckWriter([lab.dsn("gold")], interval=0.01) as writer:
        time.sleep(1.0)
        [primary] = lab.kill("gold", "leader", restart=False)
    acknowledged = writer.log.acknowledged
    assert acknowledged
    with pytest.raises(RolegenError, match="has not replayed everything gold may hold"):
        failover.run(pair(lab, "golddr"), confirm=no_confirm, timeout=10)
    [replica] = [m.name for m in lab.sites["gold"].members.values() if m.name != primary]

    def holder_is(name: str) -> bool:
        state = gold.read(gold.to)
        return state.leader_annotations.get("leader") == name and state.live_role == "standby-leader"

    lab.sites["gold"].wait(lambda: holder_is(replica), 90, f"{replica} to take gold's lock as its standby leader")
    lab.start("gold", primary)
    lab.sites["gold"].wait(lambda: ahead_of_holder(gold.read(gold.to)) is not None, 60,
                           f"{primary} to report its position past {replica}'s")
    with pytest.raises(RolegenError, match="would discard WAL its own members hold") as refused:
        failover.run(pair(lab, "gold"), confirm=no_confirm, timeout=30)
    assert refused.value.hint and f"delete pod {replica};" in refused.value.hint
    assert lab.api_role("gold") != "leader" and lab.api_role("golddr") != "leader"  # nothing promoted
    lab.delete_pod("gold", replica, force=False)  # as the hint says: Patroni releases the lock as it stops
    lab.sites["gold"].wait(lambda: holder_is(primary), 90, f"{primary} to lead gold")
    result = failover.run(pair(lab, "gold"), confirm=no_confirm, timeout=60)
    assert result.promoted
    lab.wait_role("gold", "leader")
    assert missing_ids(lab.dsn("gold"), acknowledged) == []
    # The refused failover to golddr had it stream without its DR slot (to receive what gold held), and gold's
    # fence leaves a standby's config as it is: status names the command that puts the slot back, as a user runs it.
    problems = _status(lab).problems
    assert any("golddr streams without its DR slot" in p and "rolegen apply --env golddr" in p
               for p in problems), problems
    applied = CliRunner().invoke(app, ["apply", "--env", "golddr", "--yes", "--timeout", "60", "--dir",
                                       str(lab.env_dir), "--kubeconfig", str(lab.kubeconfig)])
    assert applied.exit_code == 0, applied.output
    deadline = time.monotonic() + 60
    while (problems := _status(lab).problems) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert problems == []

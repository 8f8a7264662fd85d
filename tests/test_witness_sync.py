"""Replication sync on the leader's guard (chart/files/witness_sync.py): its keeper's order on fake looks, and the
guard run as the container runs it (tests/test_witness_guard.py's fake witness, standby guard and Patroni), with a
psql stand-in that records each statement. What users rely on: the Lease says "false" before commits go on
without the peer, a leader that cannot say so keeps waiting for the peer, and "true" comes back only on
PostgreSQL's own evidence."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.test_witness_guard import REPO, World, _ends_within, _guard, _postmaster, world  # noqa: F401

SPEC = importlib.util.spec_from_file_location("witness_sync", REPO / "chart/files/witness_sync.py")
assert SPEC is not None and SPEC.loader is not None
witness_sync = importlib.util.module_from_spec(SPEC)
sys.modules.setdefault("witness_sync", witness_sync)  # dataclasses look their module up there
SPEC.loader.exec_module(witness_sync)

PEER = frozenset({"patroni-dr-0"})
IN_SYNC = [{"application_name": "patroni-dr-0", "state": "streaming", "sync_state": "quorum"},
           {"application_name": "patroni-1", "state": "streaming", "sync_state": "async"}]
OWN_REPLICA_ONLY = [{"application_name": "patroni-1", "state": "streaming", "sync_state": "quorum"}]


FLUSH = "SELECT coalesce(max(pg_catalog.pg_wal_lsn_diff(flush_lsn"  # how the keeper asks what the peer flushed


class Psql:
    """psql as the keeper sees it: each statement recorded (but the flush question), the peer's flush position
    as `flushed` says."""

    def __init__(self, flushed: int = 0) -> None:
        self.statements: list[str] = []
        self.flushed = flushed

    def __call__(self, statement: str) -> str:
        if statement.startswith(FLUSH):
            return str(self.flushed)
        self.statements.append(statement)
        return ""


def _state(rows: list[dict[str, Any]], location: int = 1000) -> dict[str, Any]:
    return {"replication": rows, "xlog": {"location": location}}


def _keeper(psql: Psql) -> Any:
    return witness_sync.SyncKeeper(PEER, psql, lambda _line: None, settle=1.0)


def test_the_peer_counts_only_by_its_own_names_and_only_while_postgresql_says_synchronous() -> None:
    assert witness_sync.in_sync({"replication": IN_SYNC}, PEER)
    assert not witness_sync.in_sync({"replication": OWN_REPLICA_ONLY}, PEER)  # a local replica is no peer
    catching_up = [{"application_name": "patroni-dr-0", "state": "catchup", "sync_state": "potential"}]
    assert not witness_sync.in_sync({"replication": catching_up}, PEER) and not witness_sync.in_sync(None, PEER)


def test_the_keeper_drops_the_peer_only_after_a_renewal_saying_so_landed_with_nothing_else_in_flight() -> None:
    psql = Psql(flushed=1000)
    statements, keeper = psql.statements, _keeper(psql)
    keeper.look(_state(IN_SYNC), promise_fresh=True, now=0.0)
    assert keeper.publish(0) is False  # in force just now: not yet confirmed that the peer has it all
    keeper.landed(0, sent=0.0)
    keeper.look(_state(IN_SYNC), promise_fresh=True, now=1.0)
    assert keeper.publish(1) is True  # settled, and the peer flushed the position read then
    keeper.look(_state(IN_SYNC), promise_fresh=False, now=2.0)  # the standby's guard stopped answering
    assert keeper.dropping and statements == []  # renewal 1 (saying "true") is still on its way
    keeper.landed(1, sent=10.0)  # it landed: the Lease says "true"
    keeper.look(_state(IN_SYNC), promise_fresh=False, now=3.0)
    assert statements == []
    assert keeper.publish(2) is False
    keeper.look(_state(IN_SYNC), promise_fresh=False, now=4.0)
    assert statements == []  # renewal 2 not back yet
    keeper.landed(2, sent=None)  # it failed (the witness did not answer): nothing said
    keeper.look(_state(IN_SYNC), promise_fresh=False, now=5.0)
    assert statements == []
    assert keeper.publish(3) is False
    keeper.landed(3, sent=12.0)
    keeper.look(_state(IN_SYNC, 1500), promise_fresh=False, now=6.0)
    assert statements == ["ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_catalog.pg_reload_conf()"]
    assert keeper.publish(4) is False  # dropped: never "true" until restored and confirmed again
    keeper.landed(4, sent=14.0)
    keeper.look(_state(IN_SYNC, 2000), promise_fresh=True, now=7.0)  # the peer is back and streams
    assert statements[-2:] == ["ALTER SYSTEM RESET synchronous_standby_names", "SELECT pg_catalog.pg_reload_conf()"]
    keeper.look(_state(IN_SYNC, 2100), promise_fresh=True, now=8.0)
    assert keeper.publish(5) is False  # what was acknowledged without it (up to 2100) is not on the peer yet
    keeper.landed(5, sent=16.0)
    psql.flushed = 2100
    keeper.look(_state(IN_SYNC, 2200), promise_fresh=True, now=9.0)
    assert keeper.publish(6) is True
    keeper.look(_state(OWN_REPLICA_ONLY, 2300), promise_fresh=True, now=10.0)
    assert keeper.publish(7) is False  # the peer not confirming any more: "false" at once


def test_a_failed_statement_is_retried_and_nothing_counts_as_dropped_meanwhile() -> None:
    calls: list[str] = []

    def flaky(statement: str) -> str:
        calls.append(statement)
        if len(calls) == 1:
            raise subprocess.CalledProcessError(2, "psql")
        return ""

    keeper = witness_sync.SyncKeeper(PEER, flaky, lambda _line: None, settle=5.0)
    keeper.look(_state(IN_SYNC), promise_fresh=False, now=0.0)
    keeper.publish(1)
    keeper.landed(1, sent=1.0)
    with contextlib.suppress(subprocess.CalledProcessError):
        keeper.look(_state(IN_SYNC), promise_fresh=False, now=1.0)
    assert not keeper.dropped
    keeper.look(_state(IN_SYNC), promise_fresh=False, now=2.0)
    assert keeper.dropped and calls[-1] == "SELECT pg_catalog.pg_reload_conf()"


def _sync_env(env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The guard in replication sync, its psql a stand-in appending `<monotonic> <statement>` to a file."""
    bindir, record = tmp_path / "bin", tmp_path / "psql.log"
    bindir.mkdir()
    psql = bindir / "psql"
    psql.write_text(f"#!{sys.executable}\nimport sys, time\n"
                    "if 'flush_lsn' in sys.argv[-1]:\n    print(999999)\n    sys.exit(0)\n"  # the peer has it all
                    f"open({str(record)!r}, 'a').write(f'{{time.monotonic()}} {{sys.argv[-1]}}\\n')\n")
    psql.chmod(0o755)
    patroni_yml = Path(env["WITNESS_PATRONI_YML"])
    static = json.loads(patroni_yml.read_text())
    static["postgresql"] = {"bin_dir": str(bindir), "listen": "127.0.0.1:5432",
                            "parameters": {"unix_socket_directories": str(tmp_path)}}
    patroni_yml.write_text(json.dumps(static))
    return {**env, "WITNESS_REPLICATION": "sync", "WITNESS_SYNC_STANDBYS": "patroni-dr-0"}, record


@contextmanager
def _running(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """The guard in replication sync (its psql recording to the path yielded) supervising a stand-in
    postmaster; both stopped at the end."""
    env, record = _sync_env(env, tmp_path)
    postmaster = _postmaster(env)
    guard = _guard(env)
    try:
        yield record, guard
    finally:
        guard.kill()
        guard.wait(10)
        if guard.stderr is not None:
            guard.stderr.close()
        postmaster.kill()
        postmaster.wait()


def _statements(record: Path) -> list[tuple[float, str]]:
    if not record.exists():
        return []
    return [(float(at), text) for at, text in (line.split(" ", 1) for line in record.read_text().splitlines())]


def test_the_guard_says_unsynchronized_before_commits_go_on_without_the_peer_and_restores_it(
        world: tuple[World, dict[str, str]], tmp_path: Path) -> None:  # noqa: F811
    state, env = world
    state.replication = IN_SYNC
    with _running(env, tmp_path) as (record, guard):
        deadline = time.monotonic() + 10
        while not (state.said and state.said[-1][1] == "true") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.said and state.said[-1][1] == "true"  # PostgreSQL shows the peer confirming
        # (on a busy machine the first promise may come late: a drop and a restore at the start are allowed)
        state.up["standby"] = False  # the tunnel: no promise, and commits would wait for the peer
        cut = time.monotonic()
        while not any("SET synchronous_standby_names = ''" in s and at > cut for at, s in _statements(record)):
            assert time.monotonic() - cut < 4, "the peer was not dropped"
            time.sleep(0.05)
        dropped = next(at for at, s in _statements(record) if "SET synchronous_standby_names = ''" in s and at > cut)
        said_false = [at for at, said in state.said if said == "false" and at > cut]
        assert said_false and said_false[0] < dropped  # the Lease said it first
        assert [said for at, said in state.said if at > dropped] == ["false"] * len(
            [1 for at, _ in state.said if at > dropped])
        state.up["standby"] = True
        back = time.monotonic()
        while not any("RESET" in s and at > back for at, s in _statements(record)):
            assert time.monotonic() - back < 8, "the peer was not restored"
            time.sleep(0.05)
        while state.said[-1][1] != "true":
            assert time.monotonic() - back < 10
            time.sleep(0.05)
        code, log = _ends_within(guard, 0.5)
        assert code is None and "decision=sync-drop " in log and "decision=sync-restore" in log, log


def test_a_new_primary_whose_peer_is_gone_drops_it_once_the_lease_says_so(
        world: tuple[World, dict[str, str]], tmp_path: Path) -> None:  # noqa: F811
    """The failover target in sync mode (found by drill sync-site-loss: its commits waited for the lost site
    until it came back): it names the old leader's members, none streams; its guard says unsynchronized and
    drops them, and commits go on."""
    state, env = world
    state.up["standby"] = False  # the old leader's site is gone: no promise, no peer streaming
    started = time.monotonic()
    with _running(env, tmp_path) as (record, _guard_process):
        while not any("SET synchronous_standby_names = ''" in s for _, s in _statements(record)):
            assert time.monotonic() - started < 4, "the peer was never dropped"
            time.sleep(0.05)
        dropped = next(at for at, s in _statements(record) if "SET synchronous_standby_names = ''" in s)
        assert any(said == "false" and at < dropped for at, said in state.said)
        assert all(said == "false" for _, said in state.said)  # never "true": PostgreSQL never showed the peer


def test_a_leader_that_cannot_say_so_never_drops_the_peer(world: tuple[World, dict[str, str]],  # noqa: F811
                                                          tmp_path: Path) -> None:
    """Isolated from both, the leader's commits keep waiting for the peer (nothing more is acknowledged) until
    the guard fences the site: the standby's failover finds every acknowledged commit."""
    state, env = world
    state.replication = IN_SYNC
    with _running(env, tmp_path) as (record, guard):
        # Synchronized first: on a busy machine a slow answer of the standby's guard early on is a drop (announced,
        # then restored) before the isolation this test is about.
        deadline = time.monotonic() + 10
        while not (state.said and state.said[-1][1] == "true") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.said and state.said[-1][1] == "true"
        cut = time.monotonic()
        state.up.update(witness=False, standby=False)
        code, log = _ends_within(guard, 10)
        assert code == 1 and "decision=fence" in log, log
        assert not any("SET synchronous_standby_names = ''" in s for at, s in _statements(record) if at > cut), log


def test_random_schedules_never_leave_a_lease_saying_synchronized_while_the_peer_is_dropped() -> None:
    """The claim the standby's failover rests on, tried on random schedules of looks (the peer confirming or
    not, the promise fresh or stale), renewals (one at a time, as the guard sends them) landing, failing, or
    applied with their answer lost, and statements failing: whenever the Lease says "true", the rendered
    synchronous_standby_names is in force (no SET without a RESET after it)."""
    seen = {"drops": 0, "restores": 0, "said true": 0}
    for seed in range(300):
        for key, count in _one_schedule(seed).items():
            seen[key] += count
    assert min(seen.values()) > 100, seen  # the schedules drop, restore and say "true" many times


def _one_schedule(seed: int) -> dict[str, int]:
    """200 random steps against a Lease written one renewal at a time, with a WAL position that grows and a peer
    that flushes up to it at its own pace; asserts the claim after each step: a Lease saying "true" means the
    peer is in force and has flushed every commit acknowledged without it."""
    import random

    rng = random.Random(seed)
    in_force, lease, said_true = True, None, 0
    position = flushed = alone = 0  # WAL written; what the peer flushed; the last commit acknowledged without it
    statements: list[str] = []

    def run(statement: str) -> str:
        nonlocal in_force
        if rng.random() < 0.1:
            raise subprocess.CalledProcessError(2, "psql")
        if statement.startswith(FLUSH):
            return str(flushed)
        statements.append(statement)
        if statement.startswith("ALTER SYSTEM SET"):
            in_force = False
        elif statement.startswith("ALTER SYSTEM RESET"):
            in_force = True
        return ""

    keeper = witness_sync.SyncKeeper(PEER, run, lambda _line: None, settle=1.0)
    pending: tuple[int, bool] | None = None
    for number in range(200):
        position += rng.randint(0, 5)  # commits: without the peer in force, acknowledged at once
        if not in_force:
            alone = position
        peer_streams = rng.random() < 0.6
        if peer_streams:
            flushed = rng.randint(flushed, position)
        action = rng.choice(["look", "look", "send", "answer"])
        if action == "look":
            rows = ([{**IN_SYNC[0], "sync_state": "quorum" if in_force else "async"}] if peer_streams else []) + \
                rng.choice([OWN_REPLICA_ONLY, []])
            with contextlib.suppress(subprocess.CalledProcessError):
                keeper.look({"replication": rows, "xlog": {"location": position}},
                            promise_fresh=rng.random() < 0.5, now=number * 0.25)
        elif action == "send" and pending is None:
            pending = (number, keeper.publish(number))
        elif action == "answer" and pending is not None:
            applied = rng.random() < 0.7
            if applied:
                lease = pending[1]
            keeper.landed(pending[0], float(number) if applied and rng.random() < 0.8 else None)
            pending = None
        if lease is True:
            assert in_force and flushed >= alone, f"seed {seed}, step {number}: the Lease says synchronized"
        said_true += lease is True
    return {"drops": sum(s.startswith("ALTER SYSTEM SET") for s in statements),
            "restores": sum(s.startswith("ALTER SYSTEM RESET") for s in statements), "said true": said_true}

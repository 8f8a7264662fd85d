#!/usr/bin/env python3
"""Witness guard: the leader site's half of automatic failover (docs/witness.md). It is the member container's
first process and supervises the rest (the startup guard, then Patroni), so the database shares its fate: if the
guard dies, the container dies, and PostgreSQL with it.

While this member's Patroni reports a writable primary, every WITNESS_RENEW_EVERY seconds the guard renews the
witness Lease (a write guarded by its resourceVersion, publishing the site's LSN) and asks the standby site's guard
for a promise, both at once. The rules (witness_rules.LeaderGuard, the same file rolegen's model check runs) count
each lease from when its request was sent. Once neither is younger than fence_after, the guard fences at once:

1. SIGSTOP Patroni (so it cannot restart PostgreSQL as a primary), SIGKILL the postmaster: no commit after this;
2. write `standby_cluster -> peer` into the site's DCS config (guarded by resourceVersion, retried until it lands
   or WITNESS_FENCE_WRITE_FOR runs out): any member of this site that starts later starts as a standby;
3. SIGKILL Patroni and exit 1: the kubelet restarts the container, which comes back as a standby (or waits for
   the fence, through the startup guard). Reopening the site is a human's call: `rolegen failback`.

A Lease held by another site is evidence the standby promoted: fence at once. The same check gates Patroni's own
promotions (`--pre-promote`, Patroni's `pre_promote` script): a replica of this site that won the leader race, or a
standby leader being promoted, becomes a primary only with a fresh lease; it records when it got it for the
guard of its container. Without WITNESS_MODE=automatic the guard execs its command at once (today's behaviour).
Each decision is one line, `witness-guard: decision=...`. Needs only python3 (stdlib).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from member_sql import psql_runner  # SQL on this member (also the DR slot callback's)
from witness_links import Config, Links, http  # its configuration and its two requests
from witness_rules import LeaderGuard  # beside this file in the container: the one source of the rules
from witness_sync import SyncKeeper  # replication sync: what the guard says and drops (its order)

STATE = os.environ.get("WITNESS_STATE_FILE", "/tmp/witness-guard.json")  # --pre-promote's lease, for the guard


def log(message: str) -> None:
    print(f"witness-guard: {message}", file=sys.stderr, flush=True)


_EVENTS: list[Any] = []  # the site's Events (witness_events.Events), once main() knows the site


def decision(what: str, **facts: Any) -> list[threading.Thread]:
    """One log line, and an Event for the decisions that matter (witness_events.REASONS): their writers."""
    return said(" ".join([f"decision={what}", *(f"{k}={v}" for k, v in facts.items())]))


def said(line: str) -> list[threading.Thread]:
    log(line)
    what = line.split(" ", 1)[0].removeprefix("decision=")
    return [t for t in (events.emit(what, line) for events in _EVENTS) if t is not None]


def _site_events(env: dict[str, str]) -> None:
    """Events on this site's `<scope>-config` from now on (patroni.yml names both; none without it)."""
    from witness_events import Events

    try:
        import yaml  # a Patroni image has PyYAML

        with open(env["WITNESS_PATRONI_YML"]) as handle:
            static = yaml.safe_load(handle)
        namespace, scope = static["kubernetes"]["namespace"], static["scope"]
        startup = _startup_guard()
    except (OSError, KeyError, TypeError, ValueError, ImportError):
        return
    _EVENTS.append(Events(namespace, scope, startup.api, log))


def patroni_state(url: str) -> tuple[bool | None, int | None, dict[str, Any] | None]:
    """(this member is a writable primary, its WAL position, the whole answer) from Patroni's REST API; (None,
    None, None) if it does not answer: a hung Patroni's PostgreSQL may still be a primary, so no answer changes
    nothing."""
    try:
        state = http("GET", f"{url}/patroni", None, 2.0)
    except (urllib.error.URLError, OSError, ValueError):
        return None, None, None
    primary = state.get("role") in ("primary", "master") and state.get("state") == "running"
    location = (state.get("xlog") or {}).get("location")
    return primary, location if isinstance(location, int) else None, state


def pre_promote(config: Config) -> int:
    """Patroni's pre_promote: exit 0 only with a fresh lease (recorded for this container's guard)."""
    guard = LeaderGuard(config.timers)
    # Replication sync: a new primary says "unsynchronized" until PostgreSQL shows its peer confirming.
    sent, promised, lost = Links(config).both(None, False if config.sync_standbys else None, witness_enough=True)
    if lost:
        for writer in decision("refuse-promotion", reason=f"the witness Lease is held by {lost}"):
            writer.join(3)  # this process ends here: its Event first
        return 1
    for at, note in ((sent, guard.renewed), (promised, guard.promised)):
        if at is not None:
            note(at)
    if guard.decide(time.monotonic()) != "run":
        for writer in decision("refuse-promotion", reason="neither the witness nor the standby's guard answered"):
            writer.join(3)
        return 1
    with open(STATE, "w") as handle:
        json.dump({"witness_sent": guard.witness_sent, "promise_sent": guard.promise_sent}, handle)
    decision("allow-promotion", witness=sent is not None, promise=promised is not None)
    return 0


def _startup_guard() -> Any:
    """The startup guard beside this file: its API access and its fence write are the site's one fence."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "startup_guard", os.path.join(os.path.dirname(os.path.abspath(__file__)), "startup-guard.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_fence(patroni_yml: str, host: str, port: str, deadline: float) -> bool:
    """standby_cluster -> the peer in this site's DCS config, guarded by resourceVersion; retried until deadline."""
    import yaml  # a Patroni image has PyYAML (Patroni needs it); only the fence path reads patroni.yml

    startup = _startup_guard()
    with open(patroni_yml) as handle:
        static = yaml.safe_load(handle)
    path = f"/api/v1/namespaces/{static['kubernetes']['namespace']}/configmaps/{static['scope']}-config"
    while time.monotonic() < deadline:
        try:
            cm = startup.request("GET", path)
            dynamic = json.loads((cm["metadata"].get("annotations") or {}).get("config") or "{}")
            if dynamic.get("standby_cluster") or startup.write_standby_cluster(path, cm, host, port):
                return True
            continue  # changed meanwhile (a 409): read it again
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            log(f"fence write failed ({exc}); retrying")
            time.sleep(1.0)
    return False


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc): a postmaster's backends, walsenders and workers."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                found.append(int(entry))
    return found


def signal_postgres(data_dir: str | None, signum: int) -> bool:
    """`signum` to the postmaster and every process it started. Each of them is a session leader of its own
    (PostgreSQL's children call setsid), so signalling the postmaster's group would reach it alone, and its
    backends would go on committing. The postmaster first: stopped, it starts no new backend. False if there is
    no postmaster to signal."""
    pid_file = os.path.join(data_dir, "postmaster.pid") if data_dir else None
    if not pid_file or not os.path.exists(pid_file):
        return False
    try:
        with open(pid_file) as handle:
            postmaster = int(handle.readline().strip())
        if signum != signal.SIGCONT:
            os.kill(postmaster, signal.SIGSTOP)  # forks nothing more while its children are found and signalled
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    for pid in [*_children(postmaster), postmaster]:  # the children before a dead postmaster orphans them
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
    return True


def stop_postgres(child: subprocess.Popen[bytes], data_dir: str | None) -> None:
    """Freeze Patroni (it must not restart PostgreSQL as a primary), then kill the postmaster: no commit after."""
    os.kill(child.pid, signal.SIGSTOP)
    signal_postgres(data_dir, signal.SIGKILL)


def supervise(config: Config, command: list[str], env: dict[str, str], *,
              now: Callable[[], float] = time.monotonic) -> int:
    # In the guard's own process group: whatever stops the container's processes stops Patroni with it.
    child = subprocess.Popen(command)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: os.kill(child.pid, signum))
    links, guard, was_primary, next_tick = Links(config, now), LeaderGuard(config.timers), False, 0.0
    stalled = False
    answers: list[tuple[int, float | None, float | None, str | None]] = []
    keeper, rounds = None, 0
    decision("supervise", site=config.site, fence_after=config.timers.fence_after,
             renew_every=config.timers.renew_every, sync=bool(config.sync_standbys))

    def note(line: str) -> None:  # the sync keeper's decisions: a line each, and their Events
        said(f"{line} site={config.site}")

    def ask(at: int | None, number: int, says: bool | None) -> None:
        answers.append((number, *links.both(at, says)))

    while child.poll() is None:
        # A stalled PostgreSQL cannot answer Patroni's queries: it is the primary it was when stalled.
        answer, lsn, raw = (None, None, None) if stalled else patroni_state(config.patroni_url)
        primary = was_primary if answer is None else answer  # only Patroni saying so ends the guarding
        if primary and not was_primary:
            guard = LeaderGuard(config.timers)
            _seed(guard)  # the lease --pre-promote got for this promotion, if it ran here
            next_tick = 0.0
            if config.sync_standbys:  # what an earlier guard left in postgresql.auto.conf: unknown
                keeper = SyncKeeper(config.sync_standbys, psql_runner(env["WITNESS_PATRONI_YML"], env),
                                    note, settle=config.timers.renew_every)
            if guard.held_until() is None:
                # A primary that no pre_promote ran for (a new cluster's bootstrap, Patroni restarting on its own
                # lock): ask both partners now, before anything else, and decide on their answers.
                rounds += 1
                ask(lsn, rounds, keeper.publish(rounds) if keeper else None)
        was_primary = primary
        if keeper is not None and primary and raw is not None:
            fresh = guard.promise_sent is not None and now() - guard.promise_sent <= config.stall_after
            announcing = not keeper.dropping
            with contextlib.suppress(OSError, subprocess.SubprocessError):  # logged; the next look retries
                keeper.look(raw, fresh, now())
            if announcing and keeper.dropping:
                next_tick = 0.0  # say "unsynchronized" now: commits wait until it has landed
        # The requests run beside the decision loop: a slow answer never delays a fence. With replication sync
        # one round at a time (the last renewal that landed is what the Lease says).
        if primary and now() >= next_tick and not (keeper is not None and keeper.in_flight):
            next_tick = now() + config.timers.renew_every
            rounds += 1
            says = keeper.publish(rounds) if keeper else None
            threading.Thread(target=ask, args=(lsn, rounds, says), daemon=True).start()
        while answers:
            number, sent, promised, lost = answers.pop(0)
            if keeper is not None:
                keeper.landed(number, sent)
            if sent is not None:
                guard.renewed(sent)
            if promised is not None:
                guard.promised(promised)
            if lost and primary:
                return fence(config, child, env, reason=f"the witness Lease is held by {lost}")
        if primary and guard.decide(now()) == "fence":
            return fence(config, child, env, reason="neither the witness nor the standby's guard answered for "
                                                   f"{config.timers.fence_after:g}s")
        stalled = _stall(config, guard, env, primary, stalled, now())
        time.sleep(0.2)
    if stalled:
        signal_postgres(env.get("WITNESS_DATA_DIR"), signal.SIGCONT)
    return child.returncode


def _stall(config: Config, guard: LeaderGuard, env: dict[str, str], primary: bool, stalled: bool,
           now: float) -> bool:
    """Whether PostgreSQL is stalled after this look. A primary whose partners both stayed silent for
    `stall_after` (one renewal round that failed) stops acknowledging commits at once (SIGSTOP: commits wait,
    none is acknowledged) until one answers again, as Data Guard's primary stalls when it sees neither observer
    nor standby: what it acknowledged while cut, before the fence, is what an automatic failover would lose."""
    sent = [t for t in (guard.witness_sent, guard.promise_sent) if t is not None]
    silent = primary and bool(sent) and now - max(sent) > config.stall_after
    data_dir = env.get("WITNESS_DATA_DIR")
    if silent and not stalled and signal_postgres(data_dir, signal.SIGSTOP):
        decision("stall", site=config.site, silent_for=f"{now - max(sent):.1f}s",
                 reason="neither the witness nor the standby's guard answered: commits wait")
        return True
    if stalled and not silent:
        signal_postgres(data_dir, signal.SIGCONT)
        decision("resume", site=config.site, reason="a partner answered: commits go on")
        return False
    return stalled


def _seed(guard: LeaderGuard) -> None:
    try:
        with open(STATE) as handle:
            seen = json.load(handle)
        os.unlink(STATE)
    except (OSError, ValueError):
        return
    if isinstance(seen.get("witness_sent"), (int, float)):
        guard.renewed(float(seen["witness_sent"]))
    if isinstance(seen.get("promise_sent"), (int, float)):
        guard.promised(float(seen["promise_sent"]))


def fence(config: Config, child: subprocess.Popen[bytes], env: dict[str, str], *, reason: str) -> int:
    stop_postgres(child, env.get("WITNESS_DATA_DIR") or env.get("PGDATA"))
    writers = decision("fence", site=config.site, reason=reason)
    host, port = env.get("GUARD_PEER_HOST", ""), env.get("GUARD_PEER_PORT", "")
    written = bool(host and port) and write_fence(env["WITNESS_PATRONI_YML"], host, port,
                                                  time.monotonic() + config.fence_write_for)
    log(f"fence written to the DCS config: {written}" + ("" if written else " (the startup guard decides at restart)"))
    os.kill(child.pid, signal.SIGKILL)
    for writer in writers:  # the container ends with this process: its Event first, briefly
        writer.join(3)
    return 1


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    if env.get("WITNESS_MODE") == "automatic" and env.get("WITNESS_PATRONI_YML"):
        _site_events(env)
    if argv[:1] == ["--pre-promote"]:
        return pre_promote(Config.from_env(env)) if env.get("WITNESS_MODE") == "automatic" else 0
    if not argv:
        print("usage: witness-guard.py COMMAND... | --pre-promote", file=sys.stderr)
        return 2
    if env.get("WITNESS_MODE") != "automatic":
        os.execvp(argv[0], argv)
    config = Config.from_env(env)
    problems = config.timers.problems()
    if problems:
        decision("fail", problems="; ".join(problems))
        return 1
    return supervise(config, argv, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

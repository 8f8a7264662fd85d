"""Patroni's pre_promote and on_role_change: after this site's promotion from standby cluster, release the WAL
from before the divergence that the DR slot reserved (docs/dr-slot.md "After a promotion").

Why: Patroni creates the DR slot (cluster_type primary) when the site becomes a primary cluster, reserving WAL
from the last restartpoint, up to a checkpoint spacing before the divergence. Nothing moves it until the other
site streams again, so every failback by pg_rewind copied that WAL (pg_rewind copies the source's whole pg_wal):
about a third of the bench database. The other site needs nothing from before the divergence's WAL segment: its
leader wrote that WAL (this site replayed it from there) and pg_rewind keeps what it needs of its own.

What, and only when it is safe:
- pre_promote (`--pre-promote`, before every promotion, chained before the witness guard's gate if any): this
  member replays from the other site (primary_conninfo names the peer's host:port), so it is the standby leader
  of a standby cluster being promoted. The marker file beside the data directory says so; otherwise it is removed
  (a failover inside a primary cluster, whose standby site may lag behind the switch, keeps its WAL).
- on_role_change to `primary` with the marker: wait (up to DR_SLOT_WAIT seconds) until PostgreSQL is out of
  recovery and Patroni has created the slot; if the slot is inactive and reserves WAL before the start of the
  divergence's segment (from the timeline's history file), advance it there and CHECKPOINT, so the released
  segments go now. An active slot is left alone: the other site streams and moves it.
Any error is logged and ends the callback: the slot then keeps what Patroni reserved (the old behaviour, more WAL,
never less). Needs python3, PyYAML and psql (files/member_sql.py).

Usage: dr_slot.py --pre-promote PATRONI_YML SLOT PEER_HOST:PORT [COMMAND...]
       dr_slot.py PATRONI_YML SLOT on_role_change ROLE SCOPE  (Patroni appends the last three)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

MARKER = "rolegen-dr-slot.json"  # beside the data directory, on the member's volume: it survives a restart
SLOT = re.compile(r"^[a-z0-9_]{1,63}$")
LSN = re.compile(r"^[0-9A-F]{1,8}/[0-9A-F]{1,8}$")


@dataclass(frozen=True)
class Look:
    """What one look at the slot found: `state` is 'recovery', 'missing', 'active', 'released' (nothing before
    the divergence's segment) or 'reserved' (WAL before it: advance to `target`)."""

    state: str
    restart_lsn: str = ""
    target: str = ""


def switchpoint(history: str) -> str | None:
    """The LSN where the current timeline began: the last line of its history file ('<tli>\\t<lsn>\\t<reason>')."""
    lines = [line.split() for line in history.splitlines() if line.strip() and not line.startswith("#")]
    if not lines or len(lines[-1]) < 2 or not LSN.match(lines[-1][1].upper()):
        return None
    return lines[-1][1].upper()


def look(run_sql: Callable[[str], str], slot: str) -> Look:
    """One look: out of recovery yet, the switchpoint of this timeline, the slot's reservation against it."""
    if run_sql("SELECT pg_catalog.pg_is_in_recovery()") != "f":
        return Look("recovery")
    timeline = run_sql("SELECT pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn())")[:8]
    if not re.fullmatch(r"[0-9A-F]{8}", timeline) or int(timeline, 16) < 2:
        return Look("released")  # no history: nothing diverged
    history = run_sql(f"SELECT pg_catalog.pg_read_file('pg_wal/{timeline}.history')")
    point = switchpoint(history)
    if point is None:
        raise ValueError(f"unreadable history file pg_wal/{timeline}.history: {history!r}")
    # The start of the segment that holds the last byte before the switch: the returning site reads the new
    # timeline from there (it has the rest of that segment's old-timeline bytes itself).
    last = f"(pg_catalog.pg_lsn('{point}') - 1)"
    target = f"({last} - (pg_catalog.pg_walfile_name_offset({last})).file_offset)"
    row = run_sql(f"SELECT active, restart_lsn, {target}, restart_lsn < {target} FROM pg_catalog.pg_replication_slots "
                  f"WHERE slot_type = 'physical' AND slot_name = '{slot}'")
    if not row:
        return Look("missing")
    active, restart, goal, before = row.split("|")
    if active == "t":
        return Look("active", restart, goal)
    return Look("reserved" if before == "t" else "released", restart, goal)


def release(run_sql: Callable[[str], str], slot: str, wait: float, log: Callable[[str], None],
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> str:
    """Look until the slot can be judged (or `wait` is over); advance it if it reserves WAL before the
    divergence's segment. Returns what it found or did."""
    deadline = clock() + wait
    while True:
        seen = look(run_sql, slot)
        if seen.state == "reserved":
            run_sql(f"SELECT pg_catalog.pg_replication_slot_advance('{slot}', '{seen.target}')")
            log(f"dr_slot: {slot} advanced from {seen.restart_lsn} to {seen.target} (the divergence's segment)")
            try:
                run_sql("CHECKPOINT")  # a slot's released segments go at the next checkpoint: now, not in minutes
            except subprocess.TimeoutExpired:
                log("dr_slot: the checkpoint is still running; the released segments go when it ends")
            return "advanced"
        if seen.state in ("active", "released"):
            log(f"dr_slot: {slot} left as it is ({seen.state}, restart_lsn {seen.restart_lsn or '-'})")
            return seen.state
        if clock() >= deadline:
            log(f"dr_slot: {slot} not judged within {wait:g}s ({seen.state}); it keeps what Patroni reserved")
            return seen.state
        sleep(1.0)


def marker_path(patroni_yml: str) -> str:
    import yaml  # a Patroni image has PyYAML (Patroni needs it)

    with open(patroni_yml) as handle:
        data_dir = yaml.safe_load(handle)["postgresql"]["data_dir"]
    return os.path.join(os.path.dirname(os.path.normpath(data_dir)), MARKER)


def conninfo(text: str) -> dict[str, str]:
    """libpq's key=value connection string as a dict (values may be single-quoted, with \\ escapes)."""
    pairs = re.findall(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", text)
    return {k: re.sub(r"\\(.)", r"\1", v[1:-1]) if v.startswith("'") else v for k, v in pairs}


def streams_from_peer(run_sql: Callable[[str], str], peer: str) -> bool:
    """At pre_promote (still in recovery): this member replays from the other site, its standby_cluster's
    host:port, so it is the standby leader of a standby cluster being promoted. A replica inside a primary
    cluster replays from a member of its own site. (Patroni's API says `replica` for both by then, and both have
    a copy of the slot: Patroni creates it, in recovery, in the loop that removes standby_cluster.)"""
    info = conninfo(run_sql("SELECT setting FROM pg_catalog.pg_settings WHERE name = 'primary_conninfo'"))
    return f"{info.get('host', '')}:{info.get('port', '5432')}" == peer


def _sql(patroni_yml: str, env: dict[str, str]) -> Callable[[str], str]:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from member_sql import psql_runner  # beside this file in the container

    return psql_runner(patroni_yml, env)


def pre_promote(patroni_yml: str, slot: str, peer: str, env: dict[str, str], log: Callable[[str], None],
                sql: Callable[[str, dict[str, str]], Callable[[str], str]] = _sql) -> None:
    """Decide, before each promotion, whether the on_role_change after it releases: the marker says so."""
    marker = marker_path(patroni_yml)
    with contextlib.suppress(FileNotFoundError):
        os.remove(marker)  # each promotion decides afresh: never on an earlier one's marker
    try:
        site_promotion = streams_from_peer(sql(patroni_yml, env), peer)
    except (OSError, subprocess.SubprocessError) as exc:
        log(f"dr_slot: {slot} will be left as it is (no answer before the promotion: {_detail(exc)})")
        return
    if site_promotion:
        with open(marker, "w") as handle:
            json.dump({"slot": slot}, handle)


def on_role_change(patroni_yml: str, slot: str, role: str, env: dict[str, str], log: Callable[[str], None],
                   sql: Callable[[str, dict[str, str]], Callable[[str], str]] = _sql) -> None:
    marker = marker_path(patroni_yml)
    if role not in ("primary", "master"):
        return
    if not os.path.exists(marker):
        log(f"dr_slot: {slot} left as it is (a promotion inside a primary cluster: the other site may still need "
            "that WAL)")
        return
    os.remove(marker)  # first: one release per promotion from standby cluster, never a stale one
    release(sql(patroni_yml, env), slot, float(env.get("DR_SLOT_WAIT", "120")), log)


USAGE = ("usage: dr_slot.py --pre-promote PATRONI_YML SLOT PEER_HOST:PORT [COMMAND...]  (Patroni's pre_promote;\n"
         "       COMMAND, e.g. the witness guard's gate, runs after it and decides the exit code)\n"
         "       dr_slot.py PATRONI_YML SLOT on_role_change ROLE SCOPE   (Patroni's on_role_change)")


def main(argv: list[str], env: dict[str, str]) -> int:
    def log(line: str) -> None:
        print(line, flush=True)

    if len(argv) >= 4 and argv[0] == "--pre-promote" and SLOT.match(argv[2]):
        try:
            pre_promote(argv[1], argv[2], argv[3], env, log)
        except (OSError, ValueError, KeyError) as exc:
            log(f"dr_slot: {argv[2]} will be left as it is after an error: {exc}")
        if argv[4:]:
            sys.stdout.flush()
            os.execvp(argv[4], argv[4:])  # the rest of the pre_promote chain: its exit code is Patroni's answer
        return 0
    if len(argv) != 5 or argv[2] != "on_role_change" or not SLOT.match(argv[1]):
        print(USAGE, file=sys.stderr)
        return 2
    patroni_yml, slot, _action, role, _scope = argv
    try:
        on_role_change(patroni_yml, slot, role, env, log)
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        log(f"dr_slot: {slot} left as it is after an error: {_detail(exc)}")
    return 0


def _detail(exc: BaseException) -> str:
    """psql's own words when it said something (its exit status alone says nothing)."""
    if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:
        return str(exc.stderr).strip()
    return str(exc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], dict(os.environ)))

"""Benchmark on the lab: planned switchover under write load, and failback by rewind vs re-seed.

1. N planned switchovers (alternating), a writer acknowledging commits all along: total time and
   write-unavailable time (longest gap between two acknowledged commits) per move, lost acknowledged ids.
   Target: unavailable window <= 3 s median; 0 lost.
2. Failback after a hard failure of gold at a database of --scale pgbench scale (100 ~ 1.5 GB): time until gold
   streams again and bytes over the tunnel (golddr's tunnel endpoint) until the switch back is done, with --method
   rewind and with reseed, --rounds times each, a writer counting acknowledged commits on both sites from the start
   of the failback (0 may be lost). A rewind's bytes by category: the source's pg_wal (pg_rewind copies all of it),
   the other non-relation files (copied in full), and the rest: changed relation blocks, the WAL streamed after the
   rewind, the switch back and the protocol. Target: rewind bytes <= 0.1 x database size. Before each failback,
   what `rolegen failback --dry-run` predicts from the members' published figures (a rewind's parts: the source's
   pg_wal + the blocks changed + the WAL streamed again), and its error against what moved. Target: within 25 %.
   The bench waits until the members' figures have seen the checkpoint and the changes after it (a real failback
   comes minutes after the failure; the figures are read every startupGuard.figuresEvery seconds).

With --timings spec the lab keeps the bundled specs' own Patroni timings (ttl 30, loop_wait 10: what production
runs) instead of the lab's quick ones (ttl 20, loop_wait 1). --verbose prints each move's timeline: when rolegen
wrote the demotion, saw it done, passed the LSN gate, wrote the promotion, saw the target lead; and where the
write-unavailable window began and ended (seconds from the start of the move).
--load pgbench adds pgbench's load on the old leader until it demotes; --cli runs each move as the command a user
types (`rolegen switchover --yes`, a new process) and times its launch to the demotion write, seen by a watch.

Run: python bench/switchover.py [--switchovers 10] [--timings lab|spec] [--load idle|pgbench] [--cli]
     [--scale 100] [--skip-failback]
     [--skip-switchovers] [--rounds 10] [--methods rewind,reseed] [--param wal_keep_size=16MB ...]
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from rolegen.cluster.api_session import opened
from rolegen.cluster.kubectl import Cluster
from rolegen.cluster.storage import Storage, lsn_int
from rolegen.procedures import failback, failover, switchover
from rolegen.procedures.base import load_pair
from rolegen_lab.drills.workload import AckWriter, missing_ids
from rolegen_lab.lab import LAB_TIMINGS, Lab
from rolegen_lab.node.runtime import member_runtime

REPO = Path(__file__).resolve().parent.parent


def pair(lab: Lab, to: str):  # type: ignore[no-untyped-def]
    return load_pair(lab.env_dir, to, kubeconfig=lab.kubeconfig, log=lambda _: None, cache_dir=lab.root / "kc")


def gap_within(writer: AckWriter, start: float, end: float) -> tuple[float, float, float]:
    """The longest gap between two acknowledged commits around [start, end]: (length, its start, its end)."""
    times = [t for t in writer.log.acknowledged_at if start - 5 <= t <= end + 5]
    inside = [(b - a, a, b) for a, b in itertools.pairwise(times) if b >= start and a <= end]
    return max(inside, default=(end - start, start, end))


def demotion_seen(lab: Lab, env: str, stop: threading.Event, seen: list[float]) -> None:
    """Append the moment `env`'s DCS config first declares standby_cluster, from a watch through an API proxy
    (milliseconds after the write)."""
    site = lab.sites[env]
    cluster = Cluster(site.namespace, site.context, lab.kubeconfig, lab.root / "kc")
    with opened([cluster.proxy_site()]):
        session = cluster.session()
        assert session is not None
        socks: list[socket.socket] = []

        def each(line: bytes) -> None:
            meta = json.loads(line)["object"]["metadata"]
            config = json.loads((meta.get("annotations") or {}).get("config") or "{}")
            if config.get("standby_cluster") and not seen:
                seen.append(time.monotonic())
                for sock in socks:
                    sock.shutdown(socket.SHUT_RDWR)

        path = (f"/api/v1/namespaces/{site.namespace}/configmaps?watch=1&fieldSelector=metadata.name%3D"
                "patroni-config")
        while not stop.is_set() and not seen:
            session.stream(path, each, socks.append)


def one_move(lab: Lab, to: str, cli: bool) -> tuple[dict[str, float], float | None]:
    """One switchover, in-process (as the CLI runs it: APIs through a proxy, watched) or as the CLI itself: its
    marks (seconds from the procedure's start), and with `cli` the seconds from the command's launch to the
    demotion write as a watch saw it."""
    if not cli:
        moving = pair(lab, to)
        with moving.live(lambda _: None):
            return switchover.run(moving, confirm=lambda _: None).timings, None
    old = "gold" if to == "golddr" else "golddr"
    stop, seen = threading.Event(), []  # type: ignore[var-annotated]
    watcher = threading.Thread(target=demotion_seen, args=(lab, old, stop, seen), daemon=True)
    watcher.start()
    time.sleep(0.5)  # the watch is open
    launched = time.monotonic()
    run = subprocess.run([str(Path(sys.executable).parent / "rolegen"), "switchover", "--to", to, "--dir",
                          str(lab.env_dir), "--yes"], capture_output=True, text=True,
                         env={**os.environ, "KUBECONFIG": str(lab.kubeconfig)}, check=True)
    stop.set()
    watcher.join(timeout=5)
    found = re.search(r"timings \(s\): (\{.*\})", run.stdout)
    marks = ast.literal_eval(found.group(1)) if found else {}
    return marks, (seen[0] - launched) if seen else None


def pgbench_on(lab: Lab, env: str) -> subprocess.Popen[bytes]:
    """pgbench's TPC-B-like load on `env`'s leader until it demotes (its clients then fail and it exits)."""
    site = lab.sites[env]
    host, port = site.proxy.address
    env_vars = {"PGPASSWORD": lab._superuser()["password"], "PATH": "/usr/bin:/bin"}
    return subprocess.Popen([str(site.runtime.bin_dir / "pgbench"), "-n", "-T", "600", "-c", "2", "-h", host,
                             "-p", str(port), "-U", "postgres", "postgres"], env=env_vars,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_switchovers(lab: Lab, count: int, verbose: bool = False, load: str = "idle", cli: bool = False) -> None:
    rows = []
    if load == "pgbench":
        pgbench = lab.sites["gold"].runtime.bin_dir / "pgbench"
        host, port = lab.sites["gold"].proxy.address
        subprocess.run([str(pgbench), "-i", "-q", "-s", "10", "-h", host, "-p", str(port), "-U", "postgres",
                        "postgres"], env={"PGPASSWORD": lab._superuser()["password"], "PATH": "/usr/bin:/bin"},
                       check=True, capture_output=True)
        lab.wait_role("golddr", "standby-leader", 90)
    with AckWriter([lab.dsn("gold"), lab.dsn("golddr")], interval=0.002) as writer:
        time.sleep(2)
        for i in range(count):
            to = "golddr" if i % 2 == 0 else "gold"
            old = "gold" if to == "golddr" else "golddr"
            loader = pgbench_on(lab, old) if load == "pgbench" else None
            if loader is not None:
                time.sleep(3)  # steady load before the move
            t0 = time.monotonic()
            marks, to_demotion = one_move(lab, to, cli)
            lab.wait_role(to, "leader")
            t1 = time.monotonic()
            if loader is not None:
                loader.terminate()
                loader.wait()
            gap, gap_from, gap_to = gap_within(writer, t0, t1)
            if verbose:
                print(f"   {to}: {marks}; writes stopped {gap_from - t0:.2f}, resumed {gap_to - t0:.2f}"
                      + (f"; launch to demotion write {to_demotion:.2f}" if to_demotion is not None else ""))
            # The next move's preflight needs the demoted site streaming again: with loop_wait 10 that takes up
            # to a loop of each Patroni (the new leader creates the DR slot, the old site follows its timeline).
            lab.wait_role(old, "standby-leader", 90)
            start = to_demotion if cli else marks.get("demote_written")
            rows.append((to, t1 - t0, gap, start))
    final = "gold" if count % 2 == 0 else "golddr"
    lost = missing_ids(lab.dsn(final), writer.log.acknowledged)
    where = "the command's launch (CLI)" if cli else "the procedure's start (in-process)"
    print(f"| # | to | total (s) | writes unavailable (s) | from {where} to the demotion write (s) |\n"
          "|---|---|---|---|---|")
    for i, (to, total, gap, start) in enumerate(rows, 1):
        print(f"| {i} | {to} | {total:.2f} | {gap:.2f} | {start if start is None else round(start, 2)} |")
    starts = [r[3] for r in rows if r[3] is not None]
    by_to = {t: statistics.median(r[2] for r in rows if r[0] == t) for t in ("golddr", "gold") if
             any(r[0] == t for r in rows)}
    print(
        f"{len(rows)} switchovers ({load}); median total {statistics.median(r[1] for r in rows):.2f} s; median "
        f"unavailable {statistics.median(r[2] for r in rows):.2f} s (to golddr {by_to.get('golddr', 0):.2f}, to "
        f"gold {by_to.get('gold', 0):.2f}); median to the demotion write "
        f"{statistics.median(starts) if starts else float('nan'):.2f} s; acknowledged {len(writer.log.acknowledged)}, "
        f"lost {len(lost)}"
    )


def db_size(lab: Lab) -> int:
    with psycopg.connect(lab.dsn("gold"), autocommit=True) as conn:
        row = conn.execute("SELECT pg_database_size('postgres')").fetchone()
        return int(row[0]) if row else 0


def load(lab: Lab, scale: int) -> None:
    pgbench = lab.sites["gold"].runtime.bin_dir / "pgbench"
    host, port = lab.sites["gold"].proxy.address
    env = {"PGPASSWORD": lab._superuser()["password"], "PATH": "/usr/bin:/bin"}
    subprocess.run([str(pgbench), "-i", "-q", "-s", str(scale), "-h", host, "-p", str(port), "-U", "postgres",
                    "postgres"], env=env, check=True, capture_output=True)
    # Some churn after the failover point makes the rewind real (changed blocks, new WAL).


def churn(lab: Lab, env: str, seconds: int) -> None:
    pgbench = lab.sites[env].runtime.bin_dir / "pgbench"
    host, port = lab.sites[env].proxy.address
    pw = {"PGPASSWORD": lab._superuser()["password"], "PATH": "/usr/bin:/bin"}
    subprocess.run([str(pgbench), "-T", str(seconds), "-c", "2", "-h", host, "-p", str(port), "-U", "postgres",
                    "postgres"], env=pw, check=True, capture_output=True)


def wait_caught_up(lab: Lab, timeout: float = 600) -> None:
    """Steady state before the failure: gold's replica and golddr replayed everything (no lagging member may
    win gold's later leader race with WAL golddr has already recycled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(lab.dsn("gold"), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*), coalesce(max(pg_current_wal_lsn() - replay_lsn), 0) FROM pg_stat_replication"
            ).fetchone()
        if row and row[0] >= 2 and row[1] == 0:
            return
        time.sleep(1)
    raise TimeoutError("replicas did not catch up")


# What pg_rewind never copies (src/bin/pg_rewind/filemap.c: excludeDirContents, excludeFiles), as data-dir
# relative prefixes and names.
_NOT_COPIED_DIRS = ("pg_stat_tmp", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots",
                    "pg_subtrans", "pg_wal/archive_status", "pg_wal/summaries")
_NOT_COPIED_FILES = {"postgresql.auto.conf.tmp", "current_logfiles", "current_logfiles.tmp", "pg_internal.init",
                     "backup_label", "tablespace_map", "backup_manifest", "postmaster.pid", "postmaster.opts"}
_RELATION = re.compile(r"^(base/\d+|global|pg_tblspc/.+)/\d+(_(fsm|vm|init))?(\.\d+)?$")


def source_files(data: Path) -> dict[str, int]:
    """Bytes of what pg_rewind reads in full from the source's data directory, by category: its pg_wal (every
    segment there, needed or not), and every other non-relation file. Relation files are compared block by
    block: their share of what moves is the rest."""
    sizes = {"wal": 0, "other": 0}
    for path in data.rglob("*"):
        rel = path.relative_to(data).as_posix()
        if not path.is_file() or path.name in _NOT_COPIED_FILES or rel.startswith(_NOT_COPIED_DIRS):
            continue
        if _RELATION.match(rel):
            continue
        sizes["wal" if rel.startswith("pg_wal/") else "other"] += path.stat().st_size
    return sizes


def leader_data(lab: Lab, env: str) -> Path:
    site = lab.sites[env]
    leader = site.last_leader
    member = site.members[leader] if leader is not None else next(m for m in site.members.values() if m.is_leader())
    return member.data


def dr_slot_verdict(lab: Lab, env: str, timeout: float = 120) -> str:
    """What the chart's DR slot callback (files/dr_slot.py) did on `env`'s new leader after its promotion: the
    failback's bytes depend on it (a real failback comes minutes or hours later; the bench waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for member in lab.sites[env].members.values():
            lines = [line for line in member.log_tail(400000).splitlines() if line.startswith("dr_slot: ")]
            if lines:
                return lines[-1]
        time.sleep(0.5)
    return "dr_slot: no verdict"


def sql_lsn(lab: Lab, env: str, query: str) -> int:
    with psycopg.connect(lab.dsn(env), autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return lsn_int(str(row[0])) or 0 if row else 0


def wait_figures(lab: Lab, env: str, seen: Callable[[Storage], bool], timeout: float = 60) -> None:
    """Until `env`'s leading member published figures that satisfy `seen` (its publisher reads every
    startupGuard.figuresEvery seconds): a real failure and failback come minutes apart, the bench waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        moving = pair(lab, env)
        member = moving.read(moving.to).leader_member
        if member is not None and member.storage is not None and seen(member.storage):
            return
        time.sleep(0.5)
    raise SystemExit(f"{env}'s leading member published no fresh storage figures within {timeout:.0f}s")


def bench_failback(lab: Lab, method: str) -> tuple[float, int, dict[str, int], dict[str, Any]]:
    gold = lab.sites["gold"]
    churn(lab, "gold", 3)
    wait_caught_up(lab)
    # Steady state has a recent checkpoint (checkpoint_timeout): rewind needs the new leader to still hold WAL
    # from the old leader's last checkpoint before the divergence.
    with psycopg.connect(lab.dsn("gold"), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    redo = sql_lsn(lab, "gold", "SELECT (pg_control_checkpoint()).redo_lsn")
    wait_figures(lab, "gold", lambda figures: figures.redo_lsn >= redo)  # its figures have seen that checkpoint
    churn(lab, "gold", 2)
    # And the changes after it: what the prediction counts, not extrapolates (a failure seconds after the member's
    # last reading leaves the changes since extrapolated at its measured rate; see README "What a failback would
    # move").
    written = sql_lsn(lab, "gold", "SELECT pg_current_wal_lsn()")
    wait_figures(lab, "gold", lambda figures: figures.lsn >= written)
    gold.fail()
    failover.run(pair(lab, "golddr"), confirm=lambda _: None)
    churn(lab, "golddr", 5)
    print(f"  {dr_slot_verdict(lab, 'golddr')}", flush=True)
    gold.restore_api()
    failover.run(pair(lab, "golddr"), confirm=lambda _: None)  # fences gold now that its API answers
    now = sql_lsn(lab, "golddr", "SELECT pg_current_wal_lsn()")
    wait_figures(lab, "golddr", lambda figures: figures.lsn >= now)  # read after the DR slot's release
    predicted = failback.prediction(pair(lab, "gold")).as_dict()  # what `rolegen failback --dry-run` prints
    link = lab.sites["golddr"].tunnel
    source = source_files(leader_data(lab, "golddr")) if method == "rewind" else {}
    link.reset_counter()
    gold.resume_members()
    t0 = time.monotonic()
    # The failback is planned from here on: a writer on both sites counts what it acknowledged (0 may be lost).
    with AckWriter([lab.dsn("gold"), lab.dsn("golddr")], interval=0.005) as writer:
        back = pair(lab, "gold")
        with back.live(lambda _: None):  # as the CLI runs it
            result = failback.run(back, method=method, confirm=lambda _: None,  # type: ignore[arg-type]
                                  timeout=300)
        standby_at = result.timings.get("standby", time.monotonic() - t0)
        moved = link.reset_counter()
        lab.wait_role("gold", "leader")
    lost = missing_ids(lab.dsn("gold"), writer.log.acknowledged)
    if lost:
        raise SystemExit(f"failback by {method}: {len(lost)} acknowledged writes lost")
    return standby_at, moved, source, predicted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switchovers", type=int, default=10)
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--skip-failback", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="failbacks by each method")
    parser.add_argument("--methods", default="rewind,reseed", help="the failback methods to measure, in order")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a PostgreSQL parameter for both sites instead of the specs' (to compare settings)")
    parser.add_argument("--skip-switchovers", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print each move's step timings")
    parser.add_argument("--load", choices=("idle", "pgbench"), default="idle",
                        help="pgbench: pgbench's TPC-B-like load (2 clients, scale 10) on the old leader until it "
                        "demotes, besides the writer")
    parser.add_argument("--cli", action="store_true",
                        help="run each move as `rolegen switchover --yes` (a process) and time its launch to the "
                        "demotion write")
    parser.add_argument("--timings", choices=("lab", "spec"), default="lab",
                        help="Patroni timings: the lab's quick ones, or the bundled specs' own (production)")
    args = parser.parse_args()
    runtime = member_runtime()
    root = runtime.workdir()
    params = dict(item.split("=", 1) for item in args.param)
    overrides = {"patroni": {"dynamic": {"postgresql": {"parameters": params}}}} if params else None
    lab = Lab(root, REPO / "environments", runtime, timings=LAB_TIMINGS if args.timings == "lab" else None,
              overrides=overrides)
    try:
        lab.up()
        if not args.skip_switchovers:
            bench_switchovers(lab, args.switchovers, args.verbose, args.load, args.cli)
        if not args.skip_failback:
            load(lab, args.scale)
            size = db_size(lab)
            lab.wait_role("golddr", "standby-leader", 600)
            print(f"\ndatabase size {size / 2**20:.0f} MiB (pgbench scale {args.scale})")
            print("| failback | time to standby (s) | bytes over the link | bytes / DB size | source pg_wal | "
                  "other files | relation blocks (the rest) | dry-run predicted (rewind / re-seed) | error |\n"
                  "|---|---|---|---|---|---|---|---|---|")
            for method in args.methods.split(","):
                runs = []
                for _ in range(args.rounds):
                    took, moved, source, predicted = bench_failback(lab, method)
                    guess = predicted[f"{method}_bytes"]
                    error = (guess - moved) / moved if guess is not None else None
                    runs.append((took, moved, error))
                    parts = (f"{source['wal'] / 2**20:.0f} MiB | {source['other'] / 2**20:.1f} MiB | "
                             f"{(moved - source['wal'] - source['other']) / 2**20:.0f} MiB") if source else "| |"
                    both = " / ".join("?" if predicted[k] is None else f"{predicted[k] / 2**20:.0f} MiB"
                                      for k in ("rewind_bytes", "reseed_bytes"))
                    if predicted["changed_blocks"] is not None:  # the rewind's parts: pg_wal, blocks, again
                        both += (f" ({predicted['source_wal_bytes'] / 2**20:.0f} + "
                                 f"{predicted['changed_blocks'] * 8192 / 2**20:.0f} + "
                                 f"{(predicted['streamed_again_bytes'] or 0) / 2**20:.0f})")
                    shown = "?" if error is None else f"{error:+.0%}"
                    print(f"| {method} | {took:.1f} | {moved / 2**20:.0f} MiB | {moved / size:.3f} | {parts} | "
                          f"{both} | {shown} |", flush=True)
                took = statistics.median(r[0] for r in runs)
                moved = int(statistics.median(r[1] for r in runs))
                errors = [r[2] for r in runs if r[2] is not None]
                within = sum(abs(e) <= 0.25 for e in errors)
                print(f"{method}: median of {len(runs)}: {took:.1f} s, {moved / 2**20:.0f} MiB = {moved / size:.3f} x "
                      f"DB, 0 acknowledged writes lost; the dry-run's prediction within 25 % in {within} of "
                      f"{len(runs)} (errors {', '.join(f'{e:+.0%}' for e in errors) or 'none'})", flush=True)
    finally:
        lab.down()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark on the lab: planned switchover under write load, and failback by rewind vs re-seed.

1. N planned switchovers (alternating), a writer acknowledging commits all along: total time and
   write-unavailable time (longest gap between two acknowledged commits) per move, lost acknowledged ids.
   Target: unavailable window <= 3 s median; 0 lost.
2. Failback after a hard failure of gold at a database of --scale pgbench scale (100 ~ 1.5 GB): time until gold
   streams again and bytes over the tunnel (golddr's tunnel endpoint) until the switch back is done, with --method
   rewind and with reseed, --rounds times each, a writer counting acknowledged commits on both sites from the start
   of the failback (0 may be lost). A rewind's bytes by category: the source's pg_wal (pg_rewind copies all of it),
   the other non-relation files (copied in full), and the rest: changed relation blocks, the WAL streamed after the
   rewind, the switch back and the protocol. Target: rewind bytes <= 0.1 x database size.

With --timings spec the lab keeps the bundled specs' own Patroni timings (ttl 30, loop_wait 10: what production
runs) instead of the lab's quick ones (ttl 20, loop_wait 1). --verbose prints each move's timeline: when rolegen
wrote the demotion, saw it done, passed the LSN gate, wrote the promotion, saw the target lead; and where the
write-unavailable window began and ended (seconds from the start of the move).

Run: python bench/switchover.py [--switchovers 10] [--timings lab|spec] [--scale 100] [--skip-failback]
     [--skip-switchovers] [--rounds 10] [--methods rewind,reseed] [--param wal_keep_size=16MB ...]
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import psycopg

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


def bench_switchovers(lab: Lab, count: int, verbose: bool = False) -> None:
    rows = []
    with AckWriter([lab.dsn("gold"), lab.dsn("golddr")], interval=0.002) as writer:
        time.sleep(2)
        for i in range(count):
            to = "golddr" if i % 2 == 0 else "gold"
            t0 = time.monotonic()
            moving = pair(lab, to)
            result = switchover.run(moving, confirm=lambda _: None)
            lab.wait_role(to, "leader")
            t1 = time.monotonic()
            gap, gap_from, gap_to = gap_within(writer, t0, t1)
            if verbose:
                offset = t0 - moving._t0  # the pair's marks count from its creation, just before t0
                marks = {k: round(v - offset, 2) for k, v in result.timings.items()}
                print(f"   {to}: {marks}; writes stopped {gap_from - t0:.2f}, resumed {gap_to - t0:.2f}")
            # The next move's preflight needs the demoted site streaming again: with loop_wait 10 that takes up
            # to a loop of each Patroni (the new leader creates the DR slot, the old site follows its timeline).
            lab.wait_role("gold" if to == "golddr" else "golddr", "standby-leader", 90)
            rows.append((to, t1 - t0, gap))
    final = "gold" if count % 2 == 0 else "golddr"
    lost = missing_ids(lab.dsn(final), writer.log.acknowledged)
    print("| # | to | total (s) | writes unavailable (s) |\n|---|---|---|---|")
    for i, (to, total, gap) in enumerate(rows, 1):
        print(f"| {i} | {to} | {total:.2f} | {gap:.2f} |")
    print(
        f"{len(rows)} switchovers; median total {statistics.median(r[1] for r in rows):.2f} s; median unavailable "
        f"{statistics.median(r[2] for r in rows):.2f} s (target <= 3 s); acknowledged {len(writer.log.acknowledged)}, "
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


def bench_failback(lab: Lab, method: str) -> tuple[float, int, dict[str, int]]:
    gold = lab.sites["gold"]
    churn(lab, "gold", 3)
    wait_caught_up(lab)
    # Steady state has a recent checkpoint (checkpoint_timeout): rewind needs the new leader to still hold WAL
    # from the old leader's last checkpoint before the divergence.
    with psycopg.connect(lab.dsn("gold"), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    churn(lab, "gold", 2)
    gold.fail()
    failover.run(pair(lab, "golddr"), confirm=lambda _: None)
    churn(lab, "golddr", 5)
    print(f"  {dr_slot_verdict(lab, 'golddr')}", flush=True)
    gold.restore_api()
    failover.run(pair(lab, "golddr"), confirm=lambda _: None)  # fences gold now that its API answers
    link = lab.sites["golddr"].tunnel
    source = source_files(leader_data(lab, "golddr")) if method == "rewind" else {}
    link.reset_counter()
    gold.resume_members()
    t0 = time.monotonic()
    # The failback is planned from here on: a writer on both sites counts what it acknowledged (0 may be lost).
    with AckWriter([lab.dsn("gold"), lab.dsn("golddr")], interval=0.005) as writer:
        result = failback.run(pair(lab, "gold"), method=method, confirm=lambda _: None,  # type: ignore[arg-type]
                              timeout=300)
        standby_at = result.timings.get("standby", time.monotonic() - t0)
        moved = link.reset_counter()
        lab.wait_role("gold", "leader")
    lost = missing_ids(lab.dsn("gold"), writer.log.acknowledged)
    if lost:
        raise SystemExit(f"failback by {method}: {len(lost)} acknowledged writes lost")
    return standby_at, moved, source


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
            bench_switchovers(lab, args.switchovers, args.verbose)
        if not args.skip_failback:
            load(lab, args.scale)
            size = db_size(lab)
            lab.wait_role("golddr", "standby-leader", 600)
            print(f"\ndatabase size {size / 2**20:.0f} MiB (pgbench scale {args.scale})")
            print("| failback | time to standby (s) | bytes over the link | bytes / DB size | source pg_wal | "
                  "other files | relation blocks (the rest) |\n|---|---|---|---|---|---|---|")
            for method in args.methods.split(","):
                runs = []
                for _ in range(args.rounds):
                    took, moved, source = bench_failback(lab, method)
                    runs.append((took, moved))
                    parts = (f"{source['wal'] / 2**20:.0f} MiB | {source['other'] / 2**20:.1f} MiB | "
                             f"{(moved - source['wal'] - source['other']) / 2**20:.0f} MiB") if source else "| |"
                    print(f"| {method} | {took:.1f} | {moved / 2**20:.0f} MiB | {moved / size:.3f} | {parts} |",
                          flush=True)
                took = statistics.median(r[0] for r in runs)
                moved = int(statistics.median(r[1] for r in runs))
                print(f"{method}: median of {len(runs)}: {took:.1f} s, {moved / 2**20:.0f} MiB = {moved / size:.3f} x "
                      "DB, 0 acknowledged writes lost", flush=True)
    finally:
        lab.down()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

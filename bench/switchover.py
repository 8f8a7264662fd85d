"""Benchmark on the lab: planned switchover under write load, and failback by rewind vs re-seed.

1. N planned switchovers (alternating), a writer acknowledging commits all along: total time and
   write-unavailable time (longest gap between two acknowledged commits) per move, lost acknowledged ids.
   Target: unavailable window <= 3 s median; 0 lost.
2. Failback after a hard failure of gold at a database of --scale pgbench scale (100 ~ 1.5 GB): time until gold
   streams again and bytes pulled over the tunnel (golddr's tunnel endpoint), with --method rewind and with reseed.
   Target: rewind bytes <= 0.5 x database size.

With --timings spec the lab keeps the bundled specs' own Patroni timings (ttl 30, loop_wait 10: what production
runs) instead of the lab's quick ones (ttl 20, loop_wait 1). --verbose prints each move's timeline: when rolegen
wrote the demotion, saw it done, passed the LSN gate, wrote the promotion, saw the target lead; and where the
write-unavailable window began and ended (seconds from the start of the move).

Run: python bench/switchover.py [--switchovers 10] [--timings lab|spec] [--scale 100] [--skip-failback]
"""

from __future__ import annotations

import argparse
import itertools
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


def bench_failback(lab: Lab, method: str) -> tuple[float, int]:
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
    gold.restore_api()
    failover.run(pair(lab, "golddr"), confirm=lambda _: None)  # fences gold now that its API answers
    link = lab.sites["golddr"].tunnel
    link.reset_counter()
    gold.resume_members()
    t0 = time.monotonic()
    result = failback.run(pair(lab, "gold"), method=method, confirm=lambda _: None, timeout=300)  # type: ignore[arg-type]
    standby_at = result.timings.get("standby", time.monotonic() - t0)
    lab.wait_role("gold", "leader")
    return standby_at, link.reset_counter()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switchovers", type=int, default=10)
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--skip-failback", action="store_true")
    parser.add_argument("--skip-switchovers", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print each move's step timings")
    parser.add_argument("--timings", choices=("lab", "spec"), default="lab",
                        help="Patroni timings: the lab's quick ones, or the bundled specs' own (production)")
    args = parser.parse_args()
    runtime = member_runtime()
    root = runtime.workdir()
    lab = Lab(root, REPO / "environments", runtime, timings=LAB_TIMINGS if args.timings == "lab" else None)
    try:
        lab.up()
        if not args.skip_switchovers:
            bench_switchovers(lab, args.switchovers, args.verbose)
        if not args.skip_failback:
            load(lab, args.scale)
            size = db_size(lab)
            lab.wait_role("golddr", "standby-leader", 600)
            print(f"\ndatabase size {size / 2**20:.0f} MiB (pgbench scale {args.scale})")
            print("| failback | time to standby (s) | bytes over the link | bytes / DB size |\n|---|---|---|---|")
            for method in ("rewind", "reseed"):
                took, moved = bench_failback(lab, method)
                print(f"| {method} | {took:.1f} | {moved / 2**20:.0f} MiB | {moved / size:.2f} |")
    finally:
        lab.down()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

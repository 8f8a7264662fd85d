"""Benchmark: two-site lab bring-up from nothing (both sites, 3 members, gold writable, golddr streaming).

Goal (issue 5): <= 30 s on 2 cores. Prints each run, the median and its ratio to the goal.
Run: python bench/lab_bringup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from rolegen_lab.lab import Lab
from rolegen_lab.node.runtime import member_runtime

REPO = Path(__file__).resolve().parent.parent
GOAL_S = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runtime = member_runtime()  # built once, outside the timing (cached venv)
    times = []
    for _ in range(args.runs):
        root = runtime.workdir()
        lab = Lab(root, REPO / "environments", runtime)
        t0 = time.perf_counter()
        try:
            lab.up()
            times.append(time.perf_counter() - t0)
        finally:
            lab.down()
            shutil.rmtree(root, ignore_errors=True)
    median = statistics.median(times)
    print("| run | bring-up (s) |\n|---|---|")
    for i, t in enumerate(times, 1):
        print(f"| {i} | {t:.1f} |")
    print(f"median {median:.1f} s; median / goal ({GOAL_S:.0f} s) = {median / GOAL_S:.2f}")
    return 0 if median <= GOAL_S else 1


if __name__ == "__main__":
    raise SystemExit(main())

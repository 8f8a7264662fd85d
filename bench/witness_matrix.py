"""Benchmark on a lab with automatic failover (issue 23's partition matrix): every shape N times in a row (10 by
default) on one lab, restoring the baseline between runs. Prints, per shape, the verdicts; for the shapes that
must fail over, the seconds from the fault to the standby leading (median, max: the bound is fence_after + 15 s)
and the acknowledged writes lost inside the loss window (the asynchronous bound: what the leader acknowledged
before its stall); for the others, the writes lost (must be 0) and the longest write gap (no outage).

Run: python bench/witness_matrix.py [--runs 10] [--timeout 60] [SHAPE ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _lab import bench_lab

from rolegen_lab.control.channel import LocalControl
from rolegen_lab.drills.runner import Drill, restore_baseline
from rolegen_lab.drills.witness_scenarios import AUTOMATIC
from rolegen_lab.witness_timers import TIMERS


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {max(values):.1f}" if values else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("shapes", nargs="*", default=list(AUTOMATIC))
    args = parser.parse_args()
    unknown = sorted(set(args.shapes) - set(AUTOMATIC))
    if unknown:
        parser.error(f"unknown shape(s) {', '.join(unknown)}; known: {', '.join(AUTOMATIC)}")
    broken = False
    with bench_lab(timeout=180, automatic=True) as (lab, left):
        control = LocalControl(lab)
        print(f"timers: {TIMERS} (bound on the failover: fence_after + 15 = {TIMERS['fence_after'] + 15} s)")
        print("| shape | verdicts | fault → standby leads, s (median / max) | lost in window (median / max) | "
              "lost outside | median longest write gap (s) |")
        print("|---|---|---|---|---|---|")
        for name in args.shapes:
            verdicts, failover, window, outside, gaps = [], [], [], [], []
            for _ in range(args.runs):
                if not restore_baseline(control, timeout=args.timeout).passed:
                    print(f"   {name}: baseline not restored; stopping this shape", file=sys.stderr)
                    broken = True
                    break
                started = time.monotonic()
                drill = Drill(control, AUTOMATIC[name], timeout=args.timeout)
                report = drill.run()
                verdicts.append("PASS" if report.passed else "FAIL")
                if "promoted" in drill.marks and "fault" in drill.marks:
                    failover.append(drill.marks["promoted"] - drill.marks["fault"])
                window.append(len(report.lost_in_window))
                outside.append(len(report.lost))
                gaps.append(report.longest_gap)
                print(f"   {name}: {verdicts[-1]} in {time.monotonic() - started:.0f}s; "
                      f"{'; '.join(report.reasons)}", file=sys.stderr, flush=True)
            lost_window = _spread([float(n) for n in window]) if failover else "-"
            print(f"| {name} | {' '.join(verdicts)} | {_spread(failover)} | {lost_window} | {sum(outside)} | "
                  f"{statistics.median(gaps):.2f} |" if gaps else f"| {name} | - | - | - | - | - |", flush=True)
    return 1 if broken or left else 0


if __name__ == "__main__":
    raise SystemExit(main())

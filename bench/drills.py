"""Benchmark on the lab: every drill scenario N times in a row (5 by default) on one lab, restoring the baseline
between runs. Prints, per scenario, the acknowledged writes lost in each run (must be 0 where the fault model
promises it; losses inside an allowed window are shown apart), the verdicts, and the median longest write gap.

Run: python bench/drills.py [--runs 5] [--timeout 40] [SCENARIO ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _lab import bench_lab

from rolegen_lab.control.channel import LocalControl
from rolegen_lab.drills.runner import Drill, restore_baseline
from rolegen_lab.drills.scenarios import SCENARIOS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=40)
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    broken = False
    with bench_lab() as (lab, left):
        control = LocalControl(lab)
        print("| scenario | lost per run | lost in window per run | verdicts | median longest write gap (s) |")
        print("|---|---|---|---|---|")
        for name in args.scenarios:
            lost, window, verdicts, gaps = [], [], [], []
            for _ in range(args.runs):
                if not restore_baseline(control, timeout=args.timeout).passed:
                    print(f"   {name}: baseline not restored; stopping this scenario", file=sys.stderr)
                    broken = True
                    break
                started = time.monotonic()
                report = Drill(control, SCENARIOS[name], timeout=args.timeout).run()
                lost.append(len(report.lost))
                window.append(len(report.lost_in_window))
                verdicts.append("PASS" if report.passed else "FAIL")
                gaps.append(report.longest_gap)
                print(f"   {name}: {verdicts[-1]} in {time.monotonic() - started:.0f}s; lost {lost[-1]}; "
                      f"{'; '.join(report.reasons)}", file=sys.stderr, flush=True)
            median = f"{statistics.median(gaps):.2f}" if gaps else "-"
            print(f"| {name} | {lost} | {window} | {' '.join(verdicts)} | {median} |", flush=True)
    return 1 if broken or left else 0


if __name__ == "__main__":
    raise SystemExit(main())

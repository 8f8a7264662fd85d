"""Benchmark on a lab with automatic failover (issue 23's partition matrix): every shape N times (10 by default) on
one lab, in rounds (each round runs every shape once), restoring the baseline between runs. Prints, per shape,
the verdicts; for the shapes that must fail over, the seconds from the fault to the standby leading (median,
max: the bound is fence_after + 15 s) and the acknowledged writes lost inside the loss window (the asynchronous
bound: what the leader acknowledged before its stall); for the others, the writes lost (must be 0) and the
longest write gap (no outage).

With `--timers production` the lab's specs get the chart's default timers (fence_after 30 s, margin 5 s,
renew_every 5 s, request_timeout 4 s) instead of the lab's quarter-size ones, and the failover shapes are
judged against fence_after + 15 = 45 s: what a site loss costs with the defaults. Only the shapes that fail over
run by default then (the others write for the lab timers' promote_after, not the defaults').

Run: python bench/witness_matrix.py [--runs 10] [--timeout 60] [--keep-logs] [--sync] [--timers lab|production]
     [SHAPE ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _lab import bench_lab

from rolegen_lab.control.channel import LocalControl
from rolegen_lab.drills.runner import Drill, restore_baseline
from rolegen_lab.drills.steps import Scenario
from rolegen_lab.drills.sync_scenarios import SYNC
from rolegen_lab.drills.witness_scenarios import AUTOMATIC
from rolegen_lab.lab import Lab
from rolegen_lab.witness_timers import PRODUCTION, TIMERS


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {max(values):.1f}" if values else "-"


def _judged_by(scenario: Scenario, timers: dict[str, float]) -> Scenario:
    """A failover shape whose bound is fence_after + 15 s of `timers` (the catalog's is the lab timers')."""
    assert scenario.expect.within is not None
    first, second, _ = scenario.expect.within
    within = (first, second, timers["fence_after"] + 15)
    return dataclasses.replace(scenario, expect=dataclasses.replace(scenario.expect, within=within))


def _keep_logs(lab: Lab, run: str, report: list[str]) -> Path:
    """A failed run's evidence outlives the lab (which the bench removes): the report, both standby guards' logs
    and every member's log, under a directory of /tmp named after the run."""
    kept = Path(tempfile.mkdtemp(prefix=f"witness-matrix-{run}-"))
    (kept / "report.txt").write_text("\n".join(report) + "\n")
    for log in [*lab.root.glob("guards/*.log"), *lab.root.glob("*/*/patroni.log")]:
        shutil.copy(log, kept / "-".join(log.relative_to(lab.root).parts))
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--keep-logs", action="store_true", help="keep every run's logs, not only a failed run's")
    parser.add_argument("--sync", action="store_true", help="the shapes with witness replication sync (lab up --sync)")
    parser.add_argument("--timers", choices=("lab", "production"), default="lab",
                        help="the lab's quarter-size witness timers, or the chart's defaults")
    parser.add_argument("shapes", nargs="*")
    args = parser.parse_args()
    timers = PRODUCTION if args.timers == "production" else TIMERS
    catalog = SYNC if args.sync else AUTOMATIC
    if args.timers == "production":
        catalog = {name: _judged_by(scenario, timers) for name, scenario in catalog.items()
                   if scenario.expect.within is not None}
    args.shapes = args.shapes or list(catalog)
    unknown = sorted(set(args.shapes) - set(catalog))
    if unknown:
        parser.error(f"unknown shape(s) {', '.join(unknown)}; known: {', '.join(catalog)}")
    broken = False
    results: dict[str, list[tuple[str, float | None, int, int, float]]] = {name: [] for name in args.shapes}
    overrides = {"witness": {"timers": dict(timers)}} if args.timers == "production" else None
    with bench_lab(timeout=180, automatic=True, replication="sync" if args.sync else "async",
                   overrides=overrides) as (lab, left):
        control = LocalControl(lab)
        print(f"timers: {timers} (bound on the failover: fence_after + 15 = {timers['fence_after'] + 15} s)")
        # Round after round (every shape once per round): an interrupted bench still has every shape measured.
        for round_ in range(1, args.runs + 1):
            for name in args.shapes:
                if not restore_baseline(control, timeout=args.timeout).passed:
                    print(f"   {name}: baseline not restored; stopping", file=sys.stderr)
                    broken = True
                    break
                started = time.monotonic()
                drill = Drill(control, catalog[name], timeout=args.timeout)
                report = drill.run()
                took = (drill.marks["promoted"] - drill.marks["fault"]
                        if "promoted" in drill.marks and "fault" in drill.marks else None)
                if not report.passed or args.keep_logs:
                    kept = _keep_logs(lab, f"round{round_}-{name}", report.lines())
                    print(f"   {name}: the run's logs kept in {kept}", file=sys.stderr)
                results[name].append(("PASS" if report.passed else "FAIL", took, len(report.lost_in_window),
                                      len(report.lost), report.longest_gap))
                print(f"   round {round_} {name}: {results[name][-1][0]} in {time.monotonic() - started:.0f}s; "
                      f"failover {'-' if took is None else f'{took:.1f}s'}; lost in window "
                      f"{len(report.lost_in_window)}, outside {len(report.lost)}; longest write gap "
                      f"{report.longest_gap:.2f}s; {'; '.join(report.reasons)}", file=sys.stderr, flush=True)
            if broken:
                break
        print("| shape | verdicts | fault → standby leads, s (median / max) | lost in window (median / max) | "
              "lost outside | median longest write gap (s) |")
        print("|---|---|---|---|---|---|")
        for name, runs in results.items():
            if not runs:
                print(f"| {name} | - | - | - | - | - |")
                continue
            failover = [r[1] for r in runs if r[1] is not None]
            window = _spread([float(r[2]) for r in runs]) if failover else "-"
            print(f"| {name} | {' '.join(r[0] for r in runs)} | {_spread(failover)} | {window} | "
                  f"{sum(r[3] for r in runs)} | {statistics.median(r[4] for r in runs):.2f} |", flush=True)
    return 1 if broken or left else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark on the lab: many chaos schedules in a row on one lab (seed, seed+1, ...; the baseline restored
between them), then the summary table: schedules, violations by invariant, acknowledged writes, writes excused by
the fault model (a site loss's window; --accept-data-loss apart), median recovery time, the slowest and the
failing seeds. Failing schedules are saved as replay files (`rolegen lab chaos --replay FILE`).

Run: python bench/chaos.py [--schedules 100] [--seed 1] [--minutes 0.5] [--timeout 30] [--out DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
from pathlib import Path

from rolegen_lab.control.channel import LocalControl
from rolegen_lab.control.client import leftover_pids
from rolegen_lab.drills.chaos.commands import ChaosOptions, run_series, schedules
from rolegen_lab.drills.observe import Endpoints
from rolegen_lab.lab import Lab
from rolegen_lab.node.runtime import member_runtime

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--out", type=Path, default=Path("chaos-failures"))
    parser.add_argument("--json", type=Path, help="also write every result here")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # `timeout` sends SIGTERM: exit through the `finally` below, so the lab is stopped, never left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    options = ChaosOptions(args.schedules, args.seed, args.minutes, None, args.out, args.timeout)
    runtime = member_runtime()
    root = runtime.workdir()
    os.environ["KUBECACHEDIR"] = str(root / "kube-cache")
    lab = Lab(root, REPO / "environments", runtime)
    rebuilt = 0

    def rebuild() -> LocalControl:
        nonlocal lab, rebuilt
        lab.down()
        shutil.rmtree(root, ignore_errors=True)
        lab = Lab(root, REPO / "environments", runtime)
        lab.up(timeout=120)
        rebuilt += 1
        return LocalControl(lab)

    try:
        lab.up(timeout=120)
        control = LocalControl(lab)
        series = run_series(control, schedules(options, Endpoints(control.request("info"))), options,
                            lambda line: print(f"   {line}", file=sys.stderr, flush=True), rebuild)
    finally:
        lab.down()
        left = leftover_pids(root)
        shutil.rmtree(root, ignore_errors=True)
    for result in series.results:
        verdict = "PASS" if result.passed else "FAIL"
        reasons = "; ".join(f"{v.invariant}: {v.detail}" for v in result.verdict.violations)
        print(f"seed {result.schedule.seed}: {verdict} in {result.duration:.0f}s {reasons}", file=sys.stderr)
    print("\n".join(series.table()))
    print(f"labs rebuilt after an unrecoverable schedule: {rebuilt}")
    if args.json:
        args.json.write_text(json.dumps(series.as_dict(), indent=1, default=str) + "\n")
    if left:
        print(f"lab processes left behind: {left}", file=sys.stderr)
    return 0 if series.passed and not left and len(series.results) == args.schedules else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: start-up cost of the offline commands on the bundled environments, whole process.

Targets (issue 13, 2 cores): `rolegen --version` <= 0.15 s; `rolegen validate` (the bundled pair) <= 0.3 s.
`python -c pass` is printed as the floor. Run from a non-editable install for the figure users see.
Run: python bench/startup.py [--runs 5] [--rolegen PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# label, argv after the executable, target in seconds (None: shown, not judged)
CASES: list[tuple[str, list[str], float | None]] = [
    ("rolegen --version", ["--version"], 0.15),
    ("rolegen validate", ["validate"], 0.3),
    ("rolegen render --all --check", ["render", "--all", "--check"], None),
]


def default_rolegen() -> str:
    script = Path(sys.executable).parent / "rolegen"
    return str(script) if script.exists() else "rolegen"


def timed(cmd: list[str], cwd: Path, runs: int) -> list[float]:
    subprocess.run(cmd, cwd=cwd, capture_output=True)  # warm the page cache and __pycache__, not timed
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rolegen", default=default_rolegen(), help="rolegen executable (default: this venv's)")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "environments", root / "environments")
        floor = statistics.median(timed([sys.executable, "-c", "pass"], root, args.runs))
        print(f"rolegen: {args.rolegen}; median of {args.runs} runs, whole process")
        print("| command | median (s) | min / max (s) | target (s) |\n|---|---|---|---|")
        print(f"| python -c pass (floor) | {floor:.3f} | | |")
        for label, argv, target in CASES:
            times = timed([args.rolegen, *argv], root, args.runs)
            median = statistics.median(times)
            ok &= target is None or median <= target
            print(f"| {label} | {median:.3f} | {min(times):.3f} / {max(times):.3f} | {target or ''} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: start-up cost of the offline commands on the bundled environments, whole process.

Targets (issue 13, 2 cores): `rolegen --version` <= 0.15 s; `rolegen validate` (the bundled pair) <= 0.3 s.
`python -c pass` is printed as the floor. Run from a non-editable install (`pip install .`) for the figure
users and CI see. Medians of wall time are judged; CPU time is printed for runs on a busy machine.
Run: python bench/startup.py [--runs 5] [--rolegen PATH]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _timing import load_note, run_timed

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rolegen", default=default_rolegen(), help="rolegen executable (default: this venv's)")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "environments", root / "environments")
        print(f"rolegen: {args.rolegen}; median of {args.runs} runs, whole process; {load_note()}")
        print("| command | wall median (s) | wall min / max (s) | CPU median (s) | target (s) |")
        print("|---|---|---|---|---|")
        floor = run_timed([sys.executable, "-c", "pass"], root, args.runs)
        print(f"| python -c pass (floor) | {floor.median:.3f} | | {floor.cpu_median:.3f} | |")
        for label, argv, target in CASES:
            t = run_timed([args.rolegen, *argv], root, args.runs)
            ok &= target is None or t.median <= target
            print(f"| {label} | {t.median:.3f} | {min(t.wall):.3f} / {max(t.wall):.3f} | {t.cpu_median:.3f} "
                  f"| {target or ''} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: `rolegen render --all --check` and `rolegen validate` against the number of environments.

Targets (issue 13, 2 cores): 100 environments (50 pairs) `render --all --check` <= 0.5 s, and linear cost per
environment: 1,000 environments <= 10x the 100 figure. The smallest workspace is one pair (2 environments):
a single spec cannot validate, its peer must exist.

Each size is a temporary directory of valid pairs cloned from the bundled gold/golddr specs (comments kept),
rendered once with `rolegen render --all`; then each command runs as a subprocess, whole process timed.
Run: python bench/render_scale.py [--runs 5] [--sizes 2,10,100,1000] [--rolegen PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _timing import Timings, load_note, run_timed

REPO = Path(__file__).resolve().parent.parent
TARGET_100_S = 0.5
LINEAR_FACTOR = 10.0
COMMANDS = {"render --all --check": ["render", "--all", "--check"], "validate": ["validate"]}


def default_rolegen() -> str:
    """The console script of the interpreter running this bench (a venv's bin/rolegen)."""
    script = Path(sys.executable).parent / "rolegen"
    return str(script) if script.exists() else "rolegen"


def write_pairs(env_dir: Path, environments: int) -> None:
    """`environments` specs (an even number) as pairs s0000/s0000dr, ... cloned from gold/golddr."""
    gold = (REPO / "environments" / "gold.yaml").read_text(encoding="utf-8")
    golddr = (REPO / "environments" / "golddr.yaml").read_text(encoding="utf-8")
    env_dir.mkdir(parents=True)
    for i in range(environments // 2):
        name = f"s{i:04d}"
        for template, env in ((gold, name), (golddr, f"{name}dr")):
            text = template.replace("golddr", "\0").replace("gold", name).replace("\0", f"{name}dr")
            (env_dir / f"{env}.yaml").write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="2,10,100,1000", help="environment counts (even: pairs)")
    parser.add_argument("--rolegen", default=default_rolegen(), help="rolegen executable (default: this venv's)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(n < 2 or n % 2 for n in sizes):
        parser.error("sizes must be even and >= 2 (environments come in pairs)")
    medians: dict[str, dict[int, float]] = {label: {} for label in COMMANDS}
    cpu: dict[str, dict[int, float]] = {label: {} for label in COMMANDS}
    print(f"rolegen: {args.rolegen}; median of {args.runs} runs per cell, whole process; {load_note()}")
    print("| environments | " + " | ".join(f"{label}: wall (s) | CPU (s)" for label in COMMANDS) + " |")
    print("|---|" + "---|---|" * len(COMMANDS))
    for n in sizes:
        cells: dict[str, Timings] = {}
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_pairs(root / "environments", n)
            run_timed([args.rolegen, "render", "--all"], root, 1, warm=False)  # the committed output
            for label, cmd in COMMANDS.items():
                cells[label] = run_timed([args.rolegen, *cmd], root, args.runs)
                medians[label][n] = cells[label].median
                cpu[label][n] = cells[label].cpu_median
        print(f"| {n} | " + " | ".join(f"{c.median:.3f} | {c.cpu_median:.3f}" for c in cells.values()) + " |")
    ok = True
    for label, by_size in medians.items():
        if len(by_size) >= 2:
            lo, hi = min(by_size), max(by_size)
            slope_ms = (by_size[hi] - by_size[lo]) / (hi - lo) * 1000
            cpu_ms = (cpu[label][hi] - cpu[label][lo]) / (hi - lo) * 1000
            print(f"{label}: {slope_ms:.2f} ms per environment, CPU {cpu_ms:.2f} ms ({lo} -> {hi} environments)")
        if 100 in by_size and 1000 in by_size:
            ratio = by_size[1000] / by_size[100]
            ok &= ratio <= LINEAR_FACTOR
            print(f"{label}: 1000 / 100 environments = {ratio:.1f}x (target <= {LINEAR_FACTOR:.0f}x)")
    if 100 in medians["render --all --check"]:
        figure = medians["render --all --check"][100]
        ok &= figure <= TARGET_100_S
        print(f"render --all --check, 100 environments: {figure:.3f} s / target {TARGET_100_S} s = "
              f"{figure / TARGET_100_S:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

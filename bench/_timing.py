"""Whole-process timing shared by the offline benches: wall time (what users wait) and CPU time (user + sys of
the child, which a busy machine inflates much less, so runs on a loaded CI box stay comparable)."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Timings:
    wall: list[float]
    cpu: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(cmd: list[str], cwd: Path, runs: int, *, warm: bool = True) -> Timings:
    """Run `cmd` `runs` times (after one untimed warm-up run); exit non-zero on a failed run."""
    if warm:
        subprocess.run(cmd, cwd=cwd, capture_output=True)  # page cache and __pycache__, not timed
    wall, cpu = [], []
    for _ in range(runs):
        c0, t0 = _children_cpu(), time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        wall.append(time.perf_counter() - t0)
        cpu.append(_children_cpu() - c0)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return Timings(wall, cpu)


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"

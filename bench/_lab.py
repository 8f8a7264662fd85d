"""A lab for a bench run (shared by the benches that drive drills): up in a fresh working directory, its
processes all stopped afterwards, and any left behind reported (a bench that leaves one fails)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rolegen_lab.control.client import leftover_pids
from rolegen_lab.lab import Lab
from rolegen_lab.node.runtime import member_runtime

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def bench_lab(timeout: float = 120, **options: Any) -> Iterator[tuple[Lab, list[int]]]:
    """Yields the lab (up) and a list that holds, once the block is over, the pids left behind."""
    runtime = member_runtime()
    root = runtime.workdir()
    os.environ["KUBECACHEDIR"] = str(root / "kube-cache")
    lab = Lab(root, REPO / "environments", runtime, **options)
    left: list[int] = []
    try:
        lab.up(timeout=timeout)
        yield lab, left
    finally:
        lab.down()
        left += leftover_pids(root)
        shutil.rmtree(root, ignore_errors=True)
        if left:
            print(f"lab processes left behind: {left}", file=sys.stderr)

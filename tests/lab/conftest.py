"""Fixtures for the lab tests: both sites on real control planes, and rolegen's views of them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolegen.commands.lab import leftover_pids
from rolegen.kubectl import Cluster
from rolegen.lab.lab import Lab
from rolegen.lab.runtime import member_runtime
from rolegen.procedures.base import Pair, load_pair

REPO = Path(__file__).resolve().parents[2]


# -- the two-site lab ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Both sites from the bundled environments, once per test module; every process stopped after."""
    runtime = member_runtime()
    root = runtime.workdir()  # members (uid 65534) cannot traverse pytest's 0700 tmp dirs
    lab = Lab(root, REPO / "environments", runtime)
    # rolegen's own kubectl calls (no --cache-dir) keep their discovery cache in the lab, not in ~/.kube.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECACHEDIR", str(root / "kube-cache"))
        try:
            lab.up(timeout=120)
            yield lab
        finally:
            lab.down()
            left = leftover_pids(root)
            shutil.rmtree(root, ignore_errors=True)
    assert left == [], f"lab processes left behind: {left}"


def lab_cluster(lab: Lab, env: str) -> Cluster:
    """kubectl access to one lab site, as rolegen has it."""
    site = lab.sites[env]
    return Cluster(site.namespace, site.context, lab.kubeconfig, lab.root / "kube-cache")


def lab_pair(lab: Lab, to: str, log: list[str] | None = None) -> Pair:
    """A procedure's view of the lab: the lab's specs, kubeconfig and a test-owned kubectl cache."""
    sink = log if log is not None else []
    return load_pair(lab.env_dir, to, kubeconfig=lab.kubeconfig, log=sink.append, cache_dir=lab.root / "kube-cache")

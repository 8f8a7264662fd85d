"""Fixtures for the lab tests: both sites on real control planes, and rolegen's views of them.

One lab per lane (tests/lanes.py) serves every module of the lane that asks for `lab` (bringing one up and down
costs ~20 s): those modules run one after another, each starts from the baseline (no fault in force, gold
leading, golddr streaming from it, the specs agreeing; restored with a failback, or the lab rebuilt, when a module
left it elsewhere), and the lab stops as soon as the last of them in its lane ends, so no other lab test of the
lane runs beside it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import make_conninfo
from tests.lanes import later_in_lane

from rolegen.cluster.kubectl import Cluster
from rolegen.procedures.base import Pair, load_pair
from rolegen_lab.control.channel import LocalControl
from rolegen_lab.control.client import leftover_pids
from rolegen_lab.controlplane import k8sbin
from rolegen_lab.drills.runner import restore_baseline
from rolegen_lab.lab import Lab
from rolegen_lab.node.runtime import member_runtime

REPO = Path(__file__).resolve().parents[2]
BASELINE_TIMEOUT = 60
MiB = 1 << 20
# WAL sizes of megabytes, so the DR link drills outlast wal_keep_size and the slot's bound with tens of MB written
# (the drills share this lab: one lab per lane, not two).
WAL_SIZES = {"wal_keep_size": "16MB", "min_wal_size": "32MB", "max_wal_size": "32MB"}
SMALL_WAL = {"patroni": {"dynamic": {"postgresql": {"parameters": WAL_SIZES}},
                         "dr_slot": {"max_slot_wal_keep_size": "64MB"}}}


class SharedLab:
    """The one lab of the `lab` modules, started on first use."""

    def __init__(self) -> None:
        self.runtime = member_runtime()
        self.root = self.runtime.workdir()  # members (uid 65534) cannot traverse pytest's 0700 tmp dirs
        self.lab: Lab | None = None
        self._env = pytest.MonkeyPatch()

    def at_baseline(self) -> Lab:
        if self.lab is None:
            return self._start()
        report = restore_baseline(LocalControl(self.lab), timeout=BASELINE_TIMEOUT)
        if not report.passed:  # the previous module left it beyond repair: a fresh lab, not a cascade of failures
            self.lab.down()
            self._env.undo()
            shutil.rmtree(self.root, ignore_errors=True)
            return self._start()
        return self.lab

    def _start(self) -> Lab:
        # rolegen's own kubectl calls (no --cache-dir) keep their discovery cache in the lab, not in ~/.kube.
        self._env.setenv("KUBECACHEDIR", str(self.root / "kube-cache"))
        # A kubectl matched to the lab's API servers on PATH, as an operator would have one: rolegen prefers it to
        # its bundled kubectl, beyond kubectl's skew policy here (rolegen.cluster.kubectl_client).
        self._env.setenv("PATH", f"{k8sbin.find().directory}{os.pathsep}{os.environ['PATH']}")
        self.lab = Lab(self.root, REPO / "environments", self.runtime, overrides=SMALL_WAL)
        self.lab.up(timeout=120)
        return self.lab

    def stop(self) -> list[int]:
        """Stop every process of the lab; the ones still running after it (must be none)."""
        if self.lab is None:
            return []
        try:
            self.lab.down()
        finally:
            self.lab = None
            self._env.undo()
        left = leftover_pids(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
        return left


_SHARED: SharedLab | None = None


def _uses_lab(item: pytest.Item) -> bool:
    return "lab" in getattr(item, "fixturenames", ())  # the drills fixture's tests too (it asks for `lab`)


def shared_at_baseline() -> Lab:
    """The shared lab at the baseline again (restored, or rebuilt if it cannot be): for the drills, which check
    the baseline before each scenario."""
    assert _SHARED is not None, "only inside a module that uses the `lab` fixture"
    return _SHARED.at_baseline()


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """Both sites from the bundled environments at the baseline; shared with the other modules that use it."""
    global _SHARED
    if _SHARED is None:
        _SHARED = SharedLab()
    try:
        yield _SHARED.at_baseline()
    finally:
        items = request.session.items
        mine = [i for i, item in enumerate(items) if item.module is request.module]
        if not any(_uses_lab(item) for item in later_in_lane(items, mine[-1] if mine else -1)):
            shared, _SHARED = _SHARED, None
            left = shared.stop()
            assert left == [], f"lab processes left behind: {left}"


def pytest_sessionfinish() -> None:
    """An interrupted session still stops the shared lab."""
    global _SHARED
    if _SHARED is not None:
        shared, _SHARED = _SHARED, None
        shared.stop()


def lab_cluster(lab: Lab, env: str) -> Cluster:
    """kubectl access to one lab site, as rolegen has it."""
    site = lab.sites[env]
    return Cluster(site.namespace, site.context, lab.kubeconfig, lab.root / "kube-cache")


def lab_pair(lab: Lab, to: str, log: list[str] | None = None) -> Pair:
    """A procedure's view of the lab: the lab's specs, kubeconfig and a test-owned kubectl cache."""
    sink = log if log is not None else []
    return load_pair(lab.env_dir, to, kubeconfig=lab.kubeconfig, log=sink.append, cache_dir=lab.root / "kube-cache")


def member_dsn(lab: Lab, env: str, ordinal: int) -> str:
    """libpq DSN of one member's own PostgreSQL (not through the site's master proxy), as the superuser."""
    member = lab.sites[env].members[ordinal]
    return make_conninfo(lab.dsn(env), host="127.0.0.1", port=member.pg_port)


def history_alone(lab: Lab, cut: str, alone: str) -> list[dict[str, Any]]:
    """`rolegen history -f json` while the operator cannot reach `cut`'s API (`rolegen lab api-cut`): the
    records `alone` holds, merged as the CLI shows them."""
    from typer.testing import CliRunner

    from rolegen.cli import app

    assert lab.api_cut(cut) == [cut]
    try:
        shown = CliRunner().invoke(app, ["history", "-f", "json", "--dir", str(lab.env_dir), "--kubeconfig",
                                         str(lab.kubeconfig)])
    finally:
        lab.api_heal(cut)
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert {name: site["read"] for name, site in data["sites"].items()} == {cut: False, alone: True}, data["sites"]
    records: list[dict[str, Any]] = data["history"]
    return records

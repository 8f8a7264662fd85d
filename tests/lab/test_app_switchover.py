"""The application follows the role, on a lab of its own (README "Applications"): the lab's HTTP app runs at both
sites as a dependent (two instances at the leading site, none at the standby), a client sends it writes the whole
time through whichever site's instances are Ready (a global load balancer's view), and the pair switches over
there and back. Per move: every write the app acknowledged is on the new leader, the old site's instances were
gone before its demotion was written (and none of them wrote after), the new site's serve once it is promoted;
the app's unavailable window is measured. Then a dependent that cannot come up stops a switchover with a hint, and
the same command, re-run once it can, resumes; `rolegen status` shows the dependents per site."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from rolegen.commands import status as status_cmd
from rolegen.errors import RolegenError
from rolegen.offline.workspace import load_workspace
from rolegen.procedures import switchover
from rolegen.procedures.base import load_pair
from rolegen_lab import apps as lab_apps
from rolegen_lab.app import SCHEMA, TABLE
from rolegen_lab.controlplane import k8sbin
from rolegen_lab.lab import Lab
from rolegen_lab.node.runtime import member_runtime

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
MOVES = 5
FIGURES = Path(os.environ.get("ROLEGEN_APP_FIGURES", "")) if os.environ.get("ROLEGEN_APP_FIGURES") else None


@dataclass
class Load:
    """Writes through the app, one id at a time, to any Ready instance of either site (leader's first)."""

    lab: Lab
    acked: list[tuple[int, float]] = field(default_factory=list)  # (id, monotonic time of the 200)
    by: dict[int, str] = field(default_factory=dict)  # id -> the site whose instance acknowledged it
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        next_id = int(time.time() * 1000) * 1000
        while not self.stop.is_set():
            targets = [(name, a) for name, site in self.lab.sites.items() for a in lab_apps.endpoints(site)]
            ok = False
            for name, (host, port) in targets:
                try:
                    conn = http.client.HTTPConnection(host, port, timeout=3)
                    conn.request("POST", f"/write/{next_id}")
                    ok = conn.getresponse().status == 200
                    conn.close()
                except OSError:
                    ok = False
                if ok:
                    self.acked.append((next_id, time.monotonic()))
                    self.by[next_id] = name
                    break
            if not ok:
                self.failures += 1
            next_id += 1
            time.sleep(0.01)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest stretch within [start, end] with no acknowledged write (the app's unavailable window)."""
        times = [start] + [at for _, at in self.acked if start <= at <= end] + [end]
        return max(b - a for a, b in itertools.pairwise(times))


def leader(lab: Lab) -> str:
    return next(n for n, s in load_workspace(lab.env_dir).specs.items() if s.role == "leader")


def app_dsn(lab: Lab, env: str) -> str:
    secret = lab.passwords["patroni-app"]
    host, port = lab.sites[env].proxy.address
    return f"host={host} port={port} dbname=app user={secret['username']} password={secret['password']}"


def primary_dsn(lab: Lab, env: str) -> str:
    """The app database on `env`'s primary member itself (not through the site's proxy), as the superuser."""
    for member in lab.sites[env].members.values():
        dsn = make_conninfo(lab.dsn(env, dbname="app"), host="127.0.0.1", port=member.pg_port)
        with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and not row[0]:
                return dsn
    raise AssertionError(f"no member of {env} is a primary")


def wait_serving(lab: Lab, env: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(lab_apps.endpoints(lab.sites[env])) < lab_apps.REPLICAS["leader"]:
        assert time.monotonic() < deadline, f"{env}'s app not serving: {lab.sites[env].agent.apps.errors}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def applab() -> Iterator[Lab]:
    root = Path(tempfile.mkdtemp(prefix="rolegen-app-", dir="/var/tmp"))
    root.chmod(0o755)  # the members run as uid 65534
    env = pytest.MonkeyPatch()
    env.setenv("KUBECACHEDIR", str(root / "kube-cache"))
    env.setenv("PATH", f"{k8sbin.find().directory}{os.pathsep}{os.environ['PATH']}")
    lab = Lab(root, REPO / "environments", member_runtime(), overrides=lab_apps.OVERRIDES)
    try:
        lab.up(timeout=120)
        lab_apps.deploy_all(lab)
        first = leader(lab)
        with psycopg.connect(app_dsn(lab, first), autocommit=True) as conn:
            conn.execute(SCHEMA)
        wait_serving(lab, first)
        yield lab
    finally:
        lab.down()
        env.undo()
        shutil.rmtree(root, ignore_errors=True)  # its data (about 700 MB) outlived every run before


def test_switchovers_under_application_load_lose_no_write_and_move_the_app_with_the_role(applab: Lab) -> None:
    lab, windows, figures = applab, [], []
    load = Load(lab)
    writer = threading.Thread(target=load.run, daemon=True)
    writer.start()
    try:
        for _ in range(MOVES):
            old = leader(lab)
            to = next(n for n in lab.sites if n != old)
            time.sleep(1.0)  # writes acknowledged at the old site before the move
            pair = load_pair(lab.env_dir, to, kubeconfig=lab.kubeconfig, log=lambda _: None)
            start = time.monotonic()
            switchover.run(pair, confirm=lambda _: None, timeout=60)
            at = {mark: pair._t0 + seconds for mark, seconds in pair.timings.items()}
            wait_serving(lab, to, timeout=10)
            time.sleep(1.0)  # writes acknowledged at the new site after it
            end = time.monotonic()
            # The old site's instances were down before the demotion was written; the new site's came up after the
            # promotion and before the roles were recorded.
            assert at["dependents_quiesced"] <= at["demote_written"] < at["promoted"] <= at["dependents_up"]
            assert lab_apps.endpoints(lab.sites[old]) == [] and lab.sites[old].agent.apps.runs == {}
            demoted_at = time.time() - (time.monotonic() - at["demote_written"])
            acked = [i for i, when in load.acked if start <= when <= end]
            sent = list(load.acked)  # acknowledged before the read below began: each must be in what it sees
            with psycopg.connect(primary_dsn(lab, to), autocommit=True) as conn:
                found = {r[0] for r in conn.execute(f"SELECT id FROM {TABLE} WHERE id = ANY(%s)", ([i for i, _ in
                                                                                                    sent],))}
                late = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE site = %s AND at > to_timestamp(%s)",
                                    (old, demoted_at)).fetchone()
            lost = [(i, load.by[i], round(when - at["demote_written"], 3)) for i, when in sent if i not in found]
            assert lost == [], f"acknowledged, not on {to}'s primary (id, acked by, s after the demotion): {lost}; {at}"
            assert late == (0,), f"{old}'s app wrote after its demotion began"
            assert acked, "no write acknowledged during the move"
            window = load.longest_gap(start, end)
            windows.append(window)
            figures.append({"to": to, "window_s": round(window, 3), "quiesce_s": round(
                at["dependents_quiesced"] - start, 3), "db_unavailable_s": round(at["promoted"] -
                at["demote_written"], 3), "bring_up_s": round(at["dependents_up"] - at["promoted"], 3)})
    finally:
        load.stop.set()
        writer.join(timeout=10)
    summary = {"moves": figures, "median_window_s": round(statistics.median(windows), 3),
               "acknowledged": len(load.acked), "failed_attempts": load.failures}
    print(json.dumps(summary, indent=1))  # the figures the README reports
    if FIGURES is not None:
        FIGURES.write_text(json.dumps(summary, indent=1) + "\n")
    assert len(windows) == MOVES


def test_a_dependent_that_cannot_come_up_stops_the_switchover_and_the_rerun_resumes(applab: Lab) -> None:
    lab = applab
    old = leader(lab)
    to = next(n for n in lab.sites if n != old)
    apps = lab.sites[to].agent.apps
    service = next(iter(apps.services))
    real = apps.services[service]
    apps.services[service] = ("127.0.0.1", 9)  # the Service leads nowhere: the new instances never get Ready
    try:
        pair = load_pair(lab.env_dir, to, kubeconfig=lab.kubeconfig, log=lambda _: None)
        with pytest.raises(RolegenError) as caught:
            switchover.run(pair, confirm=lambda _: None, timeout=60)
    finally:
        apps.services[service] = real
    message = caught.value.message
    assert message.startswith(f"{to}'s dependent web did not reach its leader shape within {lab_apps.TIMEOUT}s")
    assert message.endswith(f"{to} leads (its promotion verified); the roles are not recorded yet")
    assert caught.value.hint is not None and f"re-run rolegen switchover --to {to}: it resumes" in caught.value.hint
    for run in list(apps.runs.values()):  # their processes started against the dead address: a restart fixes them
        if run.process is not None:
            run.process.kill()
    switchover.run(load_pair(lab.env_dir, to, kubeconfig=lab.kubeconfig, log=lambda _: None),
                   confirm=lambda _: None, timeout=60)
    wait_serving(lab, to, timeout=10)
    assert leader(lab) == to
    status = status_cmd.run(lab.env_dir, lab.kubeconfig)
    lines = status.lines()
    assert f"  dependent web: StatefulSet web {lab_apps.REPLICAS['leader']}/{lab_apps.REPLICAS['leader']} ready" \
        in lines
    assert "  dependent web: StatefulSet web 0/0 ready" in lines
    assert status.healthy, status.problems

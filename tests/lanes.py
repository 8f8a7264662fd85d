"""The suite in lanes: one ordered group of tests per pytest-xdist worker, so the lab tests run on several labs
at once.

A lab test needs its lab to itself for the whole stretch it runs in (its module's state, or a drill scenario's
report), so the unit of scheduling is a module, or one drill scenario with all its criteria, never a single test.
Units go to lanes by their measured seconds, longest first, each to the lane with the least work so far; within a
lane the units that bring their own processes run first, then the modules on the shared lab, then the drills, so
at most one lab runs per lane. The lanes follow from the test ids alone, so every worker and xdist's controller
compute the same ones (a custom scheduler: one scope per lane); without xdist they run one after another."""

from __future__ import annotations

import pytest

# Seconds per lab unit on the 2-core CI machine (pytest --durations=0, the clean-clone CI run of 92ef042 on three
# lanes, 2026-12-02); an unknown unit weighs its test count times DEFAULT_TEST.
WEIGHTS: dict[str, float] = {
    "tests/lab/test_api_session_real.py": 5,  # on the shared lab: reads, writes, a cut and a slow route (measured: 4 s)
    "tests/lab/test_app_switchover.py": 165,  # its own lab, five switchovers under app load (measured here)
    "tests/lab/test_chaos.py": 113,
    "tests/lab/test_controlplane.py": 24,
    "tests/lab/test_diff_apply.py": 122,
    "tests/lab/test_drills.py::apply-race": 67,
    "tests/lab/test_drills.py::concurrent-rolegen": 52,
    "tests/lab/test_drills.py::dr-link": 35,
    "tests/lab/test_drills.py::faults": 12,
    "tests/lab/test_drills.py::flaky-api": 162,
    "tests/lab/test_drills.py::hung-patroni": 90,
    "tests/lab/test_drills.py::killed-rolegen": 64,
    "tests/lab/test_drills.py::operator-partition": 68,
    "tests/lab/test_drills.py::paused-patroni": 8,
    "tests/lab/test_drills.py::recreated-pod": 118,
    "tests/lab/test_drills.py::restart-at-demotion": 55,
    "tests/lab/test_drills.py::returning-site": 90,
    "tests/lab/test_drills.py::tunnel-cut": 74,
    "tests/lab/test_exporter_prometheus.py": 17,
    "tests/lab/test_import.py": 26,
    "tests/lab/test_lab.py": 47,
    "tests/lab/test_lab_cli.py": 33,
    "tests/lab/test_kubectl_version.py": 4,
    "tests/lab/test_lab_failover.py": 256,  # 211 + the DR slot release and the in-site switchover (measured: 45 s)
    "tests/lab/test_nodeagent.py": 62,
    "tests/lab/test_proxy.py": 13,
    "tests/lab/test_real_apiserver.py": 63,
    "tests/lab/test_standby_guard_pod.py": 125,  # its own lab with guard Pods, two drills (measured here: 121 s)
    "tests/lab/test_switchover.py": 103,
    "tests/lab/test_tls.py": 11,
    "tests/lab/test_wheel_install.py": 86,
    "tests/lab/test_wipe.py": 7,
    "tests/lab/test_witness_matrix.py": 610,  # every shape once (measured alone beside a busy lab: 605 s)
    "tests/lab/test_witness_site.py": 69,
    "tests/test_hooks.py": 15,
    "tests/test_witness_guard.py": 111,  # real guard processes on scaled-down timers (measured here: 111 s)
}
DEFAULT_TEST = 0.08
# Scenarios another lab test of the suite runs in full, left to `rolegen lab drill` and bench/drills.py so the
# suite keeps its time bound: scenario -> what covers it.
COVERED_ELSEWHERE = {
    "switchover": "drill concurrent-rolegen: its winning run is the same switchover there and back, same oracle",
    "crash-restart-failover": "test_lab_failover.py::test_crash_and_restart_during_failover_loses_no_acknowledged_"
                              "write: strikes until failover takes the fence-first path; writer, records, rewind",
    "site-loss-failover": "drill flaky-api: the same steps (site lost, failover, its API returns, the re-run fences, "
                          "its members return, failback) with API faults on top, same oracle and loss window; "
                          "drill returning-site: a failover after a site loss that must end ok",
}
SHARED, DRILLS, OWN = "lab", "drills", "own"  # the lab fixture a unit's tests share, or none of them
ORDER = (OWN, SHARED, DRILLS)
LANE = pytest.StashKey[int]()
DRILLS_MODULE = "tests/lab/test_drills.py"


def unit_key(nodeid: str) -> str:
    """The unit a test belongs to, from its id alone (xdist's controller has nothing else): its module, or for
    the drills module one scenario with all its criteria, the DR link tests (they build on each other's rows), or
    the lab-fault tests."""
    path, _, name = nodeid.partition("::")
    if path != DRILLS_MODULE:
        return path
    if name.startswith("test_drill["):
        return f"{path}::{name[len('test_drill['):-1].rsplit('-', 1)[0]}"  # criteria names have no '-'
    return f"{path}::{'dr-link' if 'dr_link' in name else 'faults'}"


# Lab modules that use no shared lab: they bring their own processes (a control plane, a proxy, a node agent, or
# a whole lab started as a user would, by `rolegen lab up`).
OWN_PROCESSES = ("tests/lab/test_app_switchover.py",  # a lab of its own, its specs declaring the app
                 "tests/lab/test_controlplane.py", "tests/lab/test_lab_cli.py", "tests/lab/test_nodeagent.py",
                 "tests/lab/test_proxy.py", "tests/lab/test_wheel_install.py",
                 "tests/lab/test_standby_guard_pod.py",  # a lab of its own, with automatic failover (guard Pods)
                 "tests/lab/test_witness_matrix.py")  # a lab of its own, with automatic failover
LAB_LANES = 2  # lanes for the shared labs when there are lanes to spare for the rest (three or more)


def lanes_of(nodeids: list[str], lanes: int) -> dict[str, int]:
    """Each unit's lane: longest first, each to the lane with the least work so far (ties: the lowest lane).
    With three lanes or more and shared labs to run, the shared labs' units take the first LAB_LANES lanes and
    every unit that uses none (outside tests/lab, and OWN_PROCESSES) the others, the light lanes: the shared
    labs' lanes keep only their time, and the light lanes run beside them on the cores the labs leave idle while
    they wait."""
    counts: dict[str, int] = {}
    for nodeid in nodeids:
        key = unit_key(nodeid)
        counts[key] = counts.get(key, 0) + 1
    light = {k for k in counts if not k.startswith("tests/lab/") or k in OWN_PROCESSES}
    if lanes >= 3 and light != set(counts):  # without labs (`-m "not lab"`) every lane is a light one
        placed = _balance(sorted(set(counts) - light), counts, range(LAB_LANES))
        return {**placed, **_balance(sorted(light), counts, range(LAB_LANES, lanes))}
    return _balance(sorted(counts), counts, range(lanes))


def _balance(keys: list[str], counts: dict[str, int], lanes: range) -> dict[str, int]:
    load = dict.fromkeys(lanes, 0.0)
    placed: dict[str, int] = {}
    for key in sorted(keys, key=lambda k: (-WEIGHTS.get(k, DEFAULT_TEST * counts[k]), k)):
        lane = min(lanes, key=lambda i: (load[i], i))
        load[lane] += WEIGHTS.get(key, DEFAULT_TEST * counts[key])
        placed[key] = lane
    return placed


def kind_of(item: pytest.Item) -> str:
    fixtures = set(getattr(item, "fixturenames", ()))
    return DRILLS if "drills" in fixtures else SHARED if "lab" in fixtures else OWN


def lane_count(config: pytest.Config) -> int:
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput["workercount"]) if workerinput else 1


def assign(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Reorder `items` lane by lane: in each lane the units that bring their own processes, then the modules on
    the shared lab, then the drills (at most one lab at a time per lane), each unit in collection order."""
    count = lane_count(config)
    placed = lanes_of([item.nodeid for item in items], count)
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(unit_key(item.nodeid), index)
        item.stash[LANE] = placed[unit_key(item.nodeid)]
        if count >= 3 and item.stash[LANE] >= LAB_LANES and item.nodeid.startswith("tests/lab/") and \
                kind_of(item) != OWN:
            raise pytest.UsageError(f"{item.nodeid} uses a shared lab but its unit is on a light lane "
                                    "(tests/lanes.py OWN_PROCESSES names lab modules that use none)")

    def order(pair: tuple[int, pytest.Item]) -> tuple[int, int, int, int]:
        index, item = pair
        key = unit_key(item.nodeid)
        return item.stash[LANE], ORDER.index(kind_of(item)), first[key], index

    items[:] = [item for _, item in sorted(enumerate(items), key=order)]


def later_in_lane(items: list[pytest.Item], after: int) -> list[pytest.Item]:
    """The items that run after index `after` on the same worker (its lane)."""
    lane = items[after].stash.get(LANE, 0) if after >= 0 else 0
    return [item for item in items[after + 1:] if item.stash.get(LANE, 0) == lane]


def make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's scheduler with one scope per lane (each lane runs whole on one worker, in the order its worker
    collected it); the lane of a test id is computed as the workers compute it."""
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):
        _lanes: dict[str, int] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._lanes is None:
                self._lanes = lanes_of(list(self.collection or []), len(self.nodes))
            return f"lane{self._lanes[unit_key(nodeid)]}"

    return LaneScheduling(config, log)

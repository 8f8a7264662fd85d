"""The suite's lanes (tests/lanes.py): what keeps two labs from sharing a lane and the workers from disagreeing."""

from __future__ import annotations

import random
from pathlib import Path

from tests import lanes

from rolegen_lab.drills.scenarios import SCENARIOS

REPO = Path(__file__).resolve().parent.parent
IDS = [
    "tests/test_render.py::test_a", "tests/test_render.py::test_b", "tests/test_status.py::test_c",
    "tests/lab/test_lab_failover.py::test_d", "tests/lab/test_chaos.py::test_no_violation[2-lost-write]",
    "tests/lab/test_drills.py::test_a_cut_tunnel_stops_replication_while_local_writes_continue",
    *(f"tests/lab/test_drills.py::test_drill[{s}-{c}]" for s in SCENARIOS
      for c in ("no_acknowledged_write_lost", "every_run_ends_as_required")),
    "tests/lab/test_drills.py::test_dr_link_cut_beyond_wal_keep_size_catches_up_without_reseed",
    "tests/lab/test_drills.py::test_dr_link_cut_beyond_the_slot_bound_is_lost_and_reseeded",
]


def test_a_drill_scenario_keeps_all_its_criteria_in_one_unit() -> None:
    assert lanes.unit_key("tests/lab/test_drills.py::test_drill[flaky-api-no_acknowledged_write_lost]") == \
        "tests/lab/test_drills.py::flaky-api"
    assert lanes.unit_key("tests/lab/test_drills.py::test_drill[site-loss-failover-every_run_ends_as_required]") \
        == "tests/lab/test_drills.py::site-loss-failover"
    # The DR link tests build on each other's rows: one unit, never split over two labs.
    assert {lanes.unit_key(i) for i in IDS if "dr_link" in i} == {"tests/lab/test_drills.py::dr-link"}
    assert lanes.unit_key("tests/lab/test_lab.py::test_x[1]") == "tests/lab/test_lab.py"


def test_workers_and_the_controller_compute_the_same_lanes_whatever_the_order() -> None:
    # The controller sees the ids in the order a worker reordered them: the lanes must not depend on it.
    shuffled = IDS[:]
    random.Random(7).shuffle(shuffled)
    assert lanes.lanes_of(shuffled, 2) == lanes.lanes_of(IDS, 2)
    assert set(lanes.lanes_of(IDS, 2).values()) == {0, 1}
    assert set(lanes.lanes_of(IDS, 1).values()) == {0}


def test_lanes_are_balanced_within_the_longest_unit() -> None:
    placed = lanes.lanes_of(IDS, 2)
    load = [0.0, 0.0]
    counts: dict[str, int] = {}
    for nodeid in IDS:
        counts[lanes.unit_key(nodeid)] = counts.get(lanes.unit_key(nodeid), 0) + 1
    for key, lane in placed.items():
        load[lane] += lanes.WEIGHTS.get(key, lanes.DEFAULT_TEST * counts[key])
    assert abs(load[0] - load[1]) <= max(lanes.WEIGHTS.values())


def test_every_weight_names_a_unit_that_exists() -> None:
    # A renamed module or scenario would keep a stale weight and unbalance the lanes without a word.
    for key in lanes.WEIGHTS:
        path, _, part = key.partition("::")
        assert (REPO / path).is_file(), key
        if part:
            assert path == lanes.DRILLS_MODULE and (part in SCENARIOS or part in ("faults", "dr-link")), key
    suite = set(SCENARIOS) - set(lanes.COVERED_ELSEWHERE)
    assert {f"{lanes.DRILLS_MODULE}::{s}" for s in suite} <= set(lanes.WEIGHTS)
    assert set(lanes.COVERED_ELSEWHERE) < set(SCENARIOS)  # a renamed scenario would run again unweighted


def test_with_three_lanes_the_last_takes_every_unit_that_starts_no_lab() -> None:
    ids = [*IDS, "tests/lab/test_proxy.py::test_p"]
    placed = lanes.lanes_of(ids, 3)
    light = {key for key, lane in placed.items() if lane == 2}
    assert light == {"tests/test_render.py", "tests/test_status.py", "tests/lab/test_proxy.py"}
    assert {lane for key, lane in placed.items() if key not in light} == {0, 1}  # the labs on the other two
    only_units = ["tests/test_render.py::test_a", "tests/test_status.py::test_c", "tests/test_apply.py::test_d"]
    assert set(lanes.lanes_of(only_units, 3).values()) == {0, 1, 2}  # `-m "not lab"`: all lanes share them


def test_with_four_lanes_the_labs_keep_two_and_the_rest_share_two() -> None:
    ids = [*IDS, "tests/lab/test_proxy.py::test_p", "tests/lab/test_witness_matrix.py::test_m"]
    placed = lanes.lanes_of(ids, 4)
    light = {"tests/test_render.py", "tests/test_status.py", "tests/lab/test_proxy.py",
             "tests/lab/test_witness_matrix.py"}
    assert {key for key, lane in placed.items() if lane >= 2} == light
    assert {placed[key] for key in light} == {2, 3}  # the matrix's own lab on one, the rest beside it
    assert placed["tests/lab/test_witness_matrix.py"] != placed["tests/lab/test_proxy.py"]
    assert {lane for key, lane in placed.items() if key not in light} == {0, 1}

"""Chaos schedules: the seed alone reproduces one, seeds differ, replay files round-trip, and the generator keeps
schedules coherent (a site is restored only after it was lost, resumed only after it was paused)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from rolegen.errors import UsageError
from rolegen_lab.control.channel import OPS as LAB_OPS
from rolegen_lab.drills.chaos import schedule as sched
from rolegen_lab.drills.chaos.schedule import OPS, OpKind, generate


def test_the_same_seed_gives_the_same_schedule() -> None:
    assert generate(42, seconds=120) == generate(42, seconds=120)
    assert generate(42, seconds=120).ops  # not trivially equal: there is something to run


def test_different_seeds_give_different_schedules() -> None:
    schedules = {tuple((op.at, op.op, repr(sorted(op.args.items()))) for op in generate(seed).ops)
                 for seed in range(20)}
    assert len(schedules) == 20


def test_nothing_but_the_seed_is_random() -> None:
    random.seed(1)
    first = generate(9)
    random.seed(2)
    assert generate(9) == first  # the global generator does not leak in


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_replay_file_round_trips(tmp_path: Path, suffix: str) -> None:
    original = generate(1234, seconds=180)
    loaded = sched.load(sched.save(original, tmp_path / f"s{suffix}"))
    assert loaded == original
    assert loaded.lines() == original.lines()


def test_a_replay_file_with_an_unknown_op_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("format: rolegen-chaos/1\nops:\n- {at: 1, op: meteor, args: {}}\n")
    with pytest.raises(UsageError, match="operation 1 is not one of"):
        sched.load(path)
    path.write_text("just: text\n")
    with pytest.raises(UsageError, match="not a chaos replay file"):
        sched.load(path)


def test_schedules_stay_coherent() -> None:
    for seed in range(200):
        lost: set[str] = set()
        paused: set[str] = set()
        previous = 0.0
        for op in generate(seed, seconds=300).ops:
            assert op.at >= previous
            previous = op.at
            site = op.args.get("site")
            if op.op == "lose":
                assert not lost, f"seed {seed}: a second site lost while one is: {op}"
                lost.add(site)
            elif op.op == "restore":
                assert site in lost, f"seed {seed}: {site} restored without being lost"
                if not op.args["api_only"]:
                    lost.discard(site)
            elif op.op == "pause":
                assert op.args.get("member") is None  # a whole site, never a lone member
                paused.add(site)
            elif op.op == "resume":
                assert site in paused
                paused.discard(site)


def test_delays_range_from_at_once_to_beyond_ttl() -> None:
    gaps = [b.at - a.at for seed in range(50) for ops in [generate(seed, ttl=20).ops]
            for a, b in itertools.pairwise(ops)]
    assert min(gaps) == 0
    assert max(gaps) > 20


def test_every_kind_of_operation_is_drawn() -> None:
    drawn = {op.op for seed in range(300) for op in generate(seed, seconds=120).ops}
    assert drawn == set(OPS)


def test_a_new_lab_fault_is_one_entry_drawn_only_where_the_lab_knows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = OpKind("disk-full", "lab", 5, lambda r, w: {"site": r.choice(w.sites)}, "disk_full")
    monkeypatch.setitem(OPS, "disk-full", entry)
    known = {op.op for seed in range(30) for op in generate(seed, lab_ops={*LAB_OPS, "disk_full"}).ops}
    assert "disk-full" in known
    unknown = {op.op for seed in range(30) for op in generate(seed, lab_ops=set(LAB_OPS)).ops}
    assert "disk-full" not in unknown


def test_every_lab_entry_is_an_op_of_the_control_channel() -> None:
    assert all(k.lab_op in LAB_OPS for k in OPS.values() if k.runs == "lab")

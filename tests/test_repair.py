"""Which repair a failback starts with (rolegen.procedures.repair), the same choice `rolegen status` names for a
DIVERGED site: safety first (what pg_rewind cannot repair), then size (what each repair would move)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.test_failback_bytes import MIB, pair_of, storage

from rolegen.errors import RolegenError
from rolegen.procedures.failback_bytes import Prediction
from rolegen.procedures.repair import BY_SIZE, Method, choose_method, plan, repair_families
from rolegen.prometheus import exposition


@pytest.mark.parametrize(
    ("method", "blocker", "chosen"),
    [
        ("rewind", None, "rewind"),
        ("auto", None, "rewind"),
        ("auto", "system ids differ (1 vs 2)", "reseed"),
        ("reseed", None, "reseed"),
        ("reseed", "system ids differ (1 vs 2)", "reseed"),
    ],
)
def test_failback_method_choice(method: Method, blocker: str | None, chosen: str) -> None:
    assert choose_method(method, blocker) == chosen


def test_failback_refuses_a_rewind_that_cannot_work() -> None:
    with pytest.raises(RolegenError, match="pg_rewind cannot work: system ids differ") as info:
        choose_method("rewind", "system ids differ (1 vs 2)")
    assert info.value.hint == "use --method reseed (or auto)"


def test_auto_re_seeds_when_a_rewind_would_move_at_least_as_much() -> None:
    assert choose_method("auto", None, Prediction(rewind=900, reseed=800)) == "reseed"
    assert choose_method("auto", None, Prediction(rewind=100, reseed=800)) == "rewind"
    # Unknown figures: safety alone decides, as before.
    assert choose_method("auto", None, Prediction(rewind=None, reseed=800)) == "rewind"
    # Asked for a rewind: done, whatever it moves.
    assert choose_method("rewind", None, Prediction(rewind=900, reseed=800)) == "rewind"


def test_a_rewind_that_moves_less_is_the_plan_and_both_sizes_are_said() -> None:
    back, cur = pair_of([storage(fpi=3725)], storage(wal=64 * MIB, data=1600 * MIB, lsn=0x4A000000))
    repair = plan(back, cur)
    assert (repair.method, repair.why) == ("rewind", "")
    assert repair.moves() == "a rewind about 124 MiB, a re-seed about 1,600 MiB"
    assert repair.as_dict()["predicted"]["rewind_bytes"] == repair.prediction.rewind


def test_a_small_database_is_re_seeded_and_the_plan_says_why() -> None:
    back, cur = pair_of([storage(fpi=3725)], storage(wal=64 * MIB, data=40 * MIB, lsn=0x4A000000))
    repair = plan(back, cur)
    assert (repair.method, repair.blocker, repair.why) == ("reseed", None, BY_SIZE)
    assert plan(back, cur, "rewind").method == "rewind"  # asked for: done, whatever it moves


def test_a_repair_pg_rewind_cannot_do_names_only_the_re_seed() -> None:
    back, cur = pair_of([storage()], storage(data=1600 * MIB))
    other = replace(cur, config_annotations={**cur.config_annotations, "initialize": "8"})
    repair = plan(back, other)
    assert (repair.method, repair.blocker) == ("reseed", "system ids differ (7 vs 8)")
    assert repair.moves() == "a re-seed about 1,600 MiB"
    text = exposition(repair_families({"gold": repair}))
    assert 'rolegen_failback_predicted_bytes{method="reseed",site="gold"} 1677721600' in text
    assert 'method="rewind"' not in text  # a repair that cannot work has no size
    dark = replace(other, members=[replace(m, storage=None) for m in other.members])
    assert plan(back, dark).moves() == ("a re-seed: unknown (golddr-0 publishes no storage figures (the chart's "
                                        "startupGuard.figuresEvery))")


def test_unknown_figures_stay_unknown_in_the_plan_and_the_metrics() -> None:
    back, cur = pair_of([None], storage(wal=80 * MIB))
    repair = plan(back, cur)
    assert repair.method == "rewind"  # safety alone decides
    assert repair.moves() == ("a rewind: unknown, a re-seed about 1,600 MiB (no member of gold published storage "
                              "figures before it stopped)")
    assert exposition(repair_families({"gold": repair})).count("rolegen_failback_predicted_bytes{") == 1

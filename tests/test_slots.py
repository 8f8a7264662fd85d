"""The DR link's slot in specs: where render puts it, and the validation rules that keep it bounded and agreed."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import spec_data

from rolegen.offline.load import Document
from rolegen.offline.render import dcs_config, helm_values
from rolegen.offline.slots import DEFAULT_BOUND, fold_dr_slot, parse_size
from rolegen.offline.spec import Spec
from rolegen.offline.validate import validate_specs

Pair = tuple[dict[str, Any], dict[str, Any]]


@pytest.fixture
def pair() -> Pair:
    return copy.deepcopy(spec_data("gold")), copy.deepcopy(spec_data("golddr"))


def _errors(*specs: dict[str, Any]) -> list[str]:
    docs = [Document(Path(f"environments/{s['environment']}.yaml"), f"environments/{s['environment']}.yaml", s)
            for s in specs]
    return [str(p) for p in validate_specs(docs).problems if p.severity == "error"]


def _spec(data: dict[str, Any]) -> Spec:
    return Spec.from_dict(data, f"environments/{data['environment']}.yaml")


# -- render ------------------------------------------------------------------------------------------------
def test_both_sites_carry_a_primary_only_slot_named_after_the_site_it_serves(pair: Pair) -> None:
    gold, golddr = (dcs_config(_spec(d)) for d in pair)
    assert gold["slots"] == {"golddr": {"type": "physical", "cluster_type": "primary"}}
    assert golddr["slots"] == {"gold": {"type": "physical", "cluster_type": "primary"}}
    assert "standby_cluster" not in gold
    assert golddr["standby_cluster"]["primary_slot_name"] == "golddr"  # the slot gold keeps for it
    for config in (gold, golddr):
        assert config["postgresql"]["parameters"]["max_slot_wal_keep_size"] == "1GB"


def test_a_role_flip_changes_only_standby_cluster_and_the_role_value(pair: Pair) -> None:
    spec = _spec(pair[0])
    leader, standby = dcs_config(spec), dcs_config(replace(spec, role="standby-leader"))
    assert {k: v for k, v in standby.items() if k != "standby_cluster"} == leader
    assert standby["standby_cluster"]["primary_slot_name"] == "gold"  # golddr keeps a slot named gold
    values, flipped = helm_values(spec), helm_values(replace(spec, role="standby-leader"))
    assert {k for k in values if values[k] != flipped[k]} == {"role"}


def test_the_name_override_is_one_name_both_ways(pair: Pair) -> None:
    for data in pair:
        data["patroni"]["dr_slot"]["name"] = "dr_link"
    gold, golddr = (dcs_config(_spec(d)) for d in pair)
    assert list(gold["slots"]) == list(golddr["slots"]) == ["dr_link"]
    assert golddr["standby_cluster"]["primary_slot_name"] == "dr_link"
    assert _errors(*pair) == []


def test_without_dr_slot_nothing_is_added(pair: Pair) -> None:
    for data in pair:
        del data["patroni"]["dr_slot"]
    gold, golddr = (dcs_config(_spec(d)) for d in pair)
    assert "slots" not in gold and "max_slot_wal_keep_size" not in gold["postgresql"]["parameters"]
    assert golddr["standby_cluster"] == {"host": "patroni-master-gold", "port": 5432}
    assert _errors(*pair) == []


def test_the_chart_releases_the_hosted_slots_wal_from_before_a_divergence_unless_the_spec_says_not_to(
    pair: Pair,
) -> None:
    assert [helm_values(_spec(d))["patroni"]["drSlot"] for d in pair] == ["golddr", "gold"]  # the slot each keeps
    for data in pair:
        data["patroni"]["dr_slot"]["release_before_divergence"] = False
    assert all("drSlot" not in helm_values(_spec(d))["patroni"] for d in pair)
    assert _errors(*pair) == []
    for data in pair:
        del data["patroni"]["dr_slot"]
    assert all("drSlot" not in helm_values(_spec(d))["patroni"] for d in pair)


def test_the_bound_defaults_to_the_documented_value(pair: Pair) -> None:
    for data in pair:
        data["patroni"]["dr_slot"] = {"enabled": True}
    assert DEFAULT_BOUND == "1GB"
    assert dcs_config(_spec(pair[0]))["postgresql"]["parameters"]["max_slot_wal_keep_size"] == "1GB"
    assert _errors(*pair) == []


def test_user_slots_are_kept_beside_the_dr_slot(pair: Pair) -> None:
    pair[0]["patroni"]["dynamic"]["slots"] = {"reporting": {"type": "physical"}}
    assert sorted(dcs_config(_spec(pair[0]))["slots"]) == ["golddr", "reporting"]
    assert _errors(*pair) == []


# -- validation ----------------------------------------------------------------------------------------------
def test_the_bound_must_exceed_wal_keep_size(pair: Pair) -> None:
    for data in pair:
        data["patroni"]["dynamic"]["postgresql"]["parameters"]["wal_keep_size"] = "256MB"
        data["patroni"]["dr_slot"]["max_slot_wal_keep_size"] = "256MB"
    assert ("environments/gold.yaml::$.patroni.dr_slot.max_slot_wal_keep_size: 256MB is not more than wal_keep_size "
            "(256MB): the slot would keep nothing wal_keep_size does not already keep; raise it") in _errors(*pair)


@pytest.mark.parametrize("value", ["-1", -1, "1 GB", "1gb", 0, "unlimited"])
def test_an_unbounded_or_unreadable_bound_is_refused_by_the_schema(pair: Pair, value: object) -> None:
    for data in pair:
        data["patroni"]["dr_slot"]["max_slot_wal_keep_size"] = value
    assert any(e.startswith("environments/gold.yaml::$.patroni.dr_slot.max_slot_wal_keep_size: ")
               for e in _errors(*pair))


def test_the_pair_declares_one_slot(pair: Pair) -> None:
    del pair[1]["patroni"]["dr_slot"]
    errors = _errors(*pair)
    for env in ("gold", "golddr"):
        assert (f"environments/{env}.yaml::$.patroni.dr_slot: dr_slot differs between gold and golddr; the DR link's "
                "slot is declared once per pair: give both specs the same patroni.dr_slot") in errors


def test_dr_slot_owns_primary_slot_name_and_the_bound_parameter(pair: Pair) -> None:
    gold = pair[0]
    gold["patroni"]["standby"] = {"primary_slot_name": "mine"}
    gold["patroni"]["dynamic"]["postgresql"]["parameters"]["max_slot_wal_keep_size"] = "2GB"
    gold["patroni"]["dynamic"]["slots"] = {"golddr": {"type": "physical"}}
    errors = _errors(*pair)
    assert ("environments/gold.yaml::$.patroni.standby.primary_slot_name: patroni.dr_slot names the standby's "
            "slot; remove it here (or set dr_slot.name)") in errors
    assert ("environments/gold.yaml::$.patroni.dynamic.postgresql.parameters.max_slot_wal_keep_size: set by "
            "patroni.dr_slot.max_slot_wal_keep_size while dr_slot is on; remove it here") in errors
    assert ("environments/gold.yaml::$.patroni.dynamic.slots.golddr: slot 'golddr' is the DR link's "
            "(patroni.dr_slot); remove it here") in errors


def test_dr_slot_needs_use_slots(pair: Pair) -> None:
    pair[0]["patroni"]["dynamic"]["postgresql"]["use_slots"] = False
    assert ("environments/gold.yaml::$.patroni.dynamic.postgresql.use_slots: patroni.dr_slot needs use_slots: "
            "Patroni creates permanent slots only with it") in _errors(*pair)


def test_a_name_patroni_gives_a_member_is_refused(pair: Pair) -> None:
    for data in pair:
        data["patroni"]["dr_slot"]["name"] = "patroni_1"
    assert ("environments/gold.yaml::$.patroni.dr_slot.name: slot name 'patroni_1' is how Patroni names a member's "
            "slot (patroni-N); set dr_slot.name to another name") in _errors(*pair)


def test_hand_made_slots_without_a_bound_are_refused(pair: Pair) -> None:
    for data in pair:
        del data["patroni"]["dr_slot"]
    pair[1]["patroni"]["standby"] = {"primary_slot_name": "golddr"}
    pair[0]["patroni"]["dynamic"]["slots"] = {"golddr": None}
    errors = _errors(*pair)
    for env, what in (("gold", "slots.golddr"), ("golddr", "standby.primary_slot_name")):
        assert (f"environments/{env}.yaml::$.patroni.dynamic.postgresql.parameters.max_slot_wal_keep_size: "
                f"replication slots are on ({what}) but max_slot_wal_keep_size is unbounded: a standby that never "
                "returns fills the leader's disk; set a size (or use patroni.dr_slot, which sets 1GB by default)"
                ) in errors
    for data in pair:
        data["patroni"]["dynamic"]["postgresql"]["parameters"]["max_slot_wal_keep_size"] = "2GB"
    assert _errors(*pair) == []


def test_every_slot_error_is_collected_with_the_others(pair: Pair) -> None:
    pair[0]["peer"]["port"] = 0
    pair[0]["patroni"]["dr_slot"]["max_slot_wal_keep_size"] = "100MB"
    pair[1]["patroni"]["dr_slot"]["max_slot_wal_keep_size"] = "100MB"
    for data in pair:
        data["patroni"]["dynamic"]["postgresql"]["parameters"]["wal_keep_size"] = "128MB"
    pair[1]["patroni"]["dynamic"]["postgresql"]["use_slots"] = False
    errors = _errors(*pair)
    assert errors == sorted(errors)
    assert any(e.startswith("environments/gold.yaml::$.peer.port") for e in errors)
    assert any(e.startswith("environments/golddr.yaml::$.patroni.dr_slot.max_slot_wal_keep_size") for e in errors)
    assert any(e.startswith("environments/golddr.yaml::$.patroni.dynamic.postgresql.use_slots") for e in errors)


# -- sizes and import ----------------------------------------------------------------------------------------
def test_sizes_read_as_postgresql_reads_them() -> None:
    assert parse_size("1GB") == 1 << 30
    assert parse_size("64MB") == 64 << 20
    assert parse_size(256) == 256 << 20  # a bare number of wal_keep_size / max_slot_wal_keep_size is MB
    assert parse_size("-1") == -1
    assert parse_size("lots") is None and parse_size(True) is None


def test_import_turns_the_rendered_slot_back_into_dr_slot(pair: Pair) -> None:
    for data, override in ((pair[0], None), (pair[1], "dr_link")):
        if override:
            data["patroni"]["dr_slot"]["name"] = override
        spec = _spec(data)
        imported = {**copy.deepcopy(data), "patroni": {**data["patroni"], "dynamic": dcs_config(replace(
            spec, role="leader")), "standby": helm_values(spec)["patroni"]["standby"]}}
        del imported["patroni"]["dr_slot"]
        unreleased = copy.deepcopy(imported)
        fold_dr_slot(imported, helm_values(spec)["patroni"]["drSlot"])
        assert imported["patroni"]["dr_slot"] == data["patroni"]["dr_slot"]
        assert imported["patroni"]["standby"] == {}
        assert imported["patroni"]["dynamic"] == data["patroni"]["dynamic"]
        # A site installed without the chart's release hooks (no drSlot in its values) is imported as it runs.
        fold_dr_slot(unreleased, None)
        assert unreleased["patroni"]["dr_slot"] == {**data["patroni"]["dr_slot"], "release_before_divergence": False}


def test_each_site_may_choose_its_own_release_after_a_promotion(pair: Pair) -> None:
    pair[1]["patroni"]["dr_slot"]["release_before_divergence"] = False
    assert _errors(*pair) == []
    pair[1]["patroni"]["dr_slot"]["max_slot_wal_keep_size"] = "2GB"  # the slot itself is still one per pair
    assert any("dr_slot differs between gold and golddr" in e for e in _errors(*pair))

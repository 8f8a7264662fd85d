"""A member's published storage figures (rolegen.cluster.storage): read as the publisher writes them, and a
figure that is not one is missing, never guessed."""

from __future__ import annotations

import json

import pytest

from rolegen.cluster.site_state import member_from_pod
from rolegen.cluster.storage import ANNOTATION, Storage, lsn_int

GOOD = {"block_size": 8192, "data_bytes": 1600000000, "fpi_counted_from": "0/492B0000", "fpi_per_mib": 610.5,
        "fpi_since_redo": 3725, "in_recovery": False, "lsn": "0/4983D1E8", "redo_lsn": "0/492A59C8",
        "wal_bytes": 67108906}


def test_lsn_text_as_a_number() -> None:
    assert lsn_int("0/492A59C8") == 0x492A59C8
    assert lsn_int("1/0") == 1 << 32
    assert lsn_int("nope") is None and lsn_int(5) is None


def test_a_pods_figures_are_read_with_its_member() -> None:
    pod = {"metadata": {"name": "gold-0", "annotations": {ANNOTATION: json.dumps(GOOD)}}}
    storage = member_from_pod(pod).storage
    assert storage == Storage(False, 67108906, 1600000000, 0x492A59C8, 0x4983D1E8, 3725, 8192, 0x492B0000, 610.5)


def test_no_rate_before_a_whole_cycle() -> None:
    storage = Storage.from_annotations({ANNOTATION: json.dumps({**GOOD, "fpi_per_mib": None})})
    assert storage is not None and storage.fpi_per_mib is None


@pytest.mark.parametrize("change", [{"wal_bytes": -1}, {"wal_bytes": "12"}, {"redo_lsn": "12"}, {"block_size": 0},
                                    {"fpi_since_redo": True}, {"lsn": None},
                                    {"fpi_counted_from": "x"}, {"fpi_per_mib": -1}, {"fpi_per_mib": "5"}])
def test_a_figure_that_is_not_one_leaves_them_all_missing(change: dict[str, object]) -> None:
    assert Storage.from_annotations({ANNOTATION: json.dumps({**GOOD, **change})}) is None


@pytest.mark.parametrize("text", [None, "", "{", "[1]", "null"])
def test_no_figures(text: str | None) -> None:
    annotations = {} if text is None else {ANNOTATION: text}
    assert Storage.from_annotations(annotations) is None

"""The member's storage figures publisher (chart/files/member_figures.py, forked by the startup guard): what it
publishes on its Pod, when it patches, and what a failure does. The SQL runs on real PostgreSQL in the lab
(tests/lab/test_lab_failover.py reads the published figures); here its decisions, on rows a fake psql gives."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("member_figures", REPO / "chart/files/member_figures.py")
assert SPEC is not None and SPEC.loader is not None
member_figures = importlib.util.module_from_spec(SPEC)
sys.modules.setdefault("member_figures", member_figures)
SPEC.loader.exec_module(member_figures)


def row(redo: str = "0/3000028", fpi: int = 100, wal: int = 50331648, lsn: str = "0/3500000") -> str:
    return f"f|{wal}|1600000000|{redo}|{lsn}|{fpi}|8192"


class Rig:
    def __init__(self, rows: list[str | Exception]) -> None:
        self.rows, self.patches, self.lines = list(rows), [], []  # type: ignore[var-annotated]
        self.patch_fails = 0
        self.publisher = member_figures.Publisher(self.query, self.patch, self.lines.append)

    def query(self, statement: str) -> str:
        assert statement == member_figures.QUERY
        answer = self.rows.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def patch(self, body: dict[str, Any]) -> None:
        if self.patch_fails:
            self.patch_fails -= 1
            raise OSError("connection refused")
        self.patches.append(json.loads(body["metadata"]["annotations"][member_figures.ANNOTATION]))


def test_the_first_reading_is_published_with_the_images_counted_from_there() -> None:
    rig = Rig([row(fpi=100)])
    rig.publisher.round()
    assert rig.patches == [{"block_size": 8192, "data_bytes": 1600000000, "fpi_counted_from": "0/3500000",
                            "fpi_per_mib": None, "fpi_since_redo": 0, "in_recovery": False, "lsn": "0/3500000",
                            "redo_lsn": "0/3000028", "wal_bytes": 50331648}]


def test_images_since_the_checkpoint_accumulate_and_a_new_checkpoint_starts_again() -> None:
    rig = Rig([row(fpi=100), row(fpi=160, lsn="0/3600000"), row(redo="0/3600000", fpi=170, lsn="0/3700000"),
               row(redo="0/3600000", fpi=190, lsn="0/3800000")])
    for _ in range(4):
        rig.publisher.round()
    assert [(p["redo_lsn"], p["fpi_since_redo"], p["fpi_counted_from"]) for p in rig.patches] == [
        ("0/3000028", 0, "0/3500000"), ("0/3000028", 60, "0/3500000"), ("0/3600000", 0, "0/3700000"),
        ("0/3600000", 20, "0/3700000")]


def test_the_first_mib_after_a_checkpoint_give_the_early_rate_kept_until_the_next_cycle_has_its_own() -> None:
    """120 images over the first 4 MiB counted; later readings of that cycle keep it, and so does the next cycle
    until it has counted 4 MiB of its own."""
    rig = Rig([row(fpi=100, lsn="0/3500000"), row(fpi=150, lsn="0/3700000"), row(fpi=220, lsn="0/3900000"),
               row(fpi=400, lsn="0/3F00000"), row(redo="0/3F00000", fpi=410, lsn="0/4000000"),
               row(redo="0/3F00000", fpi=450, lsn="0/4400000")])
    rates = []
    for _ in range(6):
        rig.publisher.round()
        rates.append(rig.patches[-1]["fpi_per_mib"])
    assert rates == [None, None, 30.0, 30.0, 30.0, 10.0]


def test_an_unchanged_reading_is_not_patched_again() -> None:
    rig = Rig([row(), row(), row()])
    for _ in range(3):
        rig.publisher.round()
    assert len(rig.patches) == 1


def test_statistics_reset_after_a_crash_does_not_count_negative_images() -> None:
    rig = Rig([row(fpi=500), row(fpi=20, lsn="0/3600000")])
    rig.publisher.round()
    rig.publisher.round()
    assert rig.patches[-1]["fpi_since_redo"] == 0


def test_a_postgres_that_does_not_answer_publishes_nothing_and_says_so_once() -> None:
    down = subprocess.CalledProcessError(2, "psql", stderr="could not connect")
    rig = Rig([down, down, "garbage", row()])
    for _ in range(4):
        rig.publisher.round()
    assert len(rig.patches) == 1  # only the real reading
    assert len([line for line in rig.lines if "read" in line]) == 1, rig.lines


def test_a_failed_patch_is_tried_again_next_round() -> None:
    rig = Rig([row(), row()])
    rig.patch_fails = 1
    rig.publisher.round()
    assert rig.patches == [] and rig.lines == ["member-figures: skipped (patch: connection refused)"]
    rig.publisher.round()
    assert len(rig.patches) == 1


@pytest.mark.parametrize("text", ["", "t|1|2", "x|1|2|0/1|0/2|3|8192", "f|a|2|0/1|0/2|3|8192"])
def test_rows_that_are_not_the_query_s_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        member_figures.parse(text)


def test_nothing_is_forked_when_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATRONI_NAME", "patroni-0")
    monkeypatch.setenv("ROLEGEN_FIGURES_EVERY", "0")
    monkeypatch.setattr(member_figures.os, "fork", lambda: pytest.fail("forked while off"))
    assert member_figures.start("/nonexistent/patroni.yml", lambda *_: None) is None

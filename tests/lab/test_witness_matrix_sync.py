"""The partition matrix with witness replication sync once in the suite (rolegen_lab.drills.sync_scenarios, on a
lab of its own: `rolegen lab up --sync`), each criterion of tests/lab/test_witness_matrix.py asserted apart. With
sync no shape has a loss window: an automatic failover loses no acknowledged write at all. Marked `matrix`, like
the asynchronous matrix: CI runs it after the suite, on a machine left to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from tests.lab.test_witness_matrix import CRITERIA, Matrix, lab_matrix

from rolegen_lab.drills.report import Report
from rolegen_lab.drills.sync_scenarios import SYNC

pytestmark = [pytest.mark.lab, pytest.mark.matrix]


@pytest.fixture(scope="module")
def sync_matrix() -> Iterator[Matrix]:
    yield from lab_matrix("sync")


def nothing_acknowledged_is_lost(report: Report) -> None:
    """0 acknowledged writes lost, in any shape, failover included: the leader acknowledged nothing its peer
    had not confirmed, or said first that it ran unsynchronized (then no automatic failover)."""
    assert report.loss_window is None and report.lost_in_window == [], "\n".join(report.lines())


SYNC_CRITERIA: list[Callable[[Report], None]] = [*CRITERIA, nothing_acknowledged_is_lost]


@pytest.mark.parametrize("criterion", SYNC_CRITERIA, ids=[c.__name__ for c in SYNC_CRITERIA])
@pytest.mark.parametrize("shape", list(SYNC))
def test_sync_shape(sync_matrix: Matrix, shape: str, criterion: Callable[[Report], None]) -> None:
    criterion(sync_matrix.report(shape))

"""The one poll loop (rolegen.cluster.wait.poll): what it returns, and the typed timeout carrying what it saw."""

from __future__ import annotations

import pytest

from rolegen.cluster.kubectl import ClusterUnreachable
from rolegen.cluster.wait import poll
from rolegen.errors import WaitTimedOut


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [0.0]
    monkeypatch.setattr("rolegen.cluster.wait.time.monotonic", lambda: now[0])
    monkeypatch.setattr("rolegen.cluster.wait.time.sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


def test_a_wait_returns_the_observation_that_satisfied_it(clock: list[float]) -> None:
    reads = iter(["demoting", "demoting", "standby-leader", "never read"])
    assert poll(lambda: next(reads), lambda r: r == "standby-leader", timeout=10, every=1, what="x") == "standby-leader"
    assert clock[0] == 2


def test_running_out_raises_the_typed_timeout_with_the_last_observation_looked_at_the_deadline(
    clock: list[float],
) -> None:
    seen: list[float] = []
    with pytest.raises(WaitTimedOut) as out:
        poll(lambda: clock[0], lambda _: False, timeout=2.5, every=1, what="gold to report leader",
             seen=lambda _, elapsed: seen.append(elapsed))
    assert out.value.last == 2.5 and seen == [0, 1, 2, 2.5]
    assert out.value.what == "gold to report leader"
    assert out.value.message.endswith("waiting for gold to report leader")


def test_an_error_while_observing_is_never_a_timeout(clock: list[float]) -> None:
    def read() -> str:
        raise ClusterUnreachable("gold: connection refused")

    with pytest.raises(ClusterUnreachable):
        poll(read, lambda _: True, timeout=5, every=1, what="x")


def test_sleep_first_waits_before_the_first_look(clock: list[float]) -> None:
    looked: list[float] = []
    poll(lambda: looked.append(clock[0]) or True, bool, timeout=5, every=0.5, what="x", sleep_first=True)
    assert looked == [0.5]

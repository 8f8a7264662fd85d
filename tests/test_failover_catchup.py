"""The failover's catch-up (rolegen.procedures.failover_catchup) as the standby site's guard runs it: a target
that receives nothing from the fenced old site is not waited for (nothing more can arrive, and the promotion
replays what it received), one that still receives is; a human's run waits as before. And the guard's run asks
a silent old site's API twice, not for a whole timeout (bench --timers production: these waits cost the
failover 4 s each of the 5 s the default timers leave it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.test_failover import Sites, fenced_gold, target, unreachable

from rolegen.procedures import failover
from rolegen.procedures.base import Pair, load_pair

# The chart's default request_timeout: the guard passes it as the failover's evidence timeout.
GUARD = {"accept_data_loss": True, "evidence_timeout": 4.0}


@pytest.fixture
def pair(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Pair:
    monkeypatch.setattr(failover, "record_roles", lambda *a, **k: None)
    return load_pair(workdir / "environments", "golddr", log=lambda _: None)


def waits(pair: Pair) -> list[str]:
    """The waits the run entered (each one a poll until its condition or its timeout)."""
    entered: list[str] = []
    real = pair.wait

    def wait(what: str, *args: Any, **kwargs: Any) -> Any:
        entered.append(what)
        return real(what, *args, **kwargs)

    pair.wait = wait  # type: ignore[method-assign]
    return entered


def test_the_guards_failover_promotes_a_target_that_receives_nothing_without_waiting(pair: Pair) -> None:
    lines: list[str] = []
    pair.log = lines.append
    entered = waits(pair)
    sites = Sites(pair, [target(lsn=1000)], [fenced_gold(lsn=5000)])
    result = failover.run(pair, confirm=lambda _: None, timeout=60, **GUARD)
    assert result.promoted and result.decision == "fence-first"
    assert sites.writes == [("gold", "fence"), ("golddr", "leader")]
    assert not any("replay" in what for what in entered), entered
    assert any("golddr receives nothing from gold" in line and "--accept-data-loss" in line for line in lines)


def test_the_guards_failover_waits_for_a_target_that_still_receives(pair: Pair) -> None:
    """Streaming again (the tunnel back after the guard's look): what arrives within the evidence timeout is
    not lost, so the catch-up waits for it as a human's run would, up to that timeout."""
    entered = waits(pair)
    caught = target(lsn=5000, state="streaming")
    # read at the preflight and before the fence; streaming again by the catch-up; then caught up
    golddr = [target(lsn=1000)] * 2 + [target(lsn=3000, state="streaming"), caught]
    gold = [fenced_gold(lsn=5000, version=str(v)) for v in range(1, 9)]  # its lock renewed: the position settles
    lines: list[str] = []
    pair.log = lines.append
    sites = Sites(pair, golddr, gold)
    assert failover.run(pair, confirm=lambda _: None, timeout=60, **GUARD).promoted
    assert not any("--accept-data-loss" in line for line in lines), lines
    assert any(what == "golddr to replay what gold holds" for what in entered), entered
    assert sites.writes == [("gold", "fence"), ("golddr", "leader")]


def test_a_humans_failover_still_waits_for_the_old_sites_position(pair: Pair) -> None:
    entered = waits(pair)
    Sites(pair, [target(lsn=1000)], [fenced_gold(lsn=5000)])
    with pytest.raises(Exception, match="has not replayed everything gold may hold"):
        failover.run(pair, confirm=lambda _: None, timeout=0.5)
    assert "golddr to replay what gold holds" in entered


def test_the_guards_failover_asks_a_silent_old_site_twice_and_promotes(pair: Pair) -> None:
    sites = Sites(pair, [target()], [unreachable()])
    asked: list[str] = []
    real = sites.read

    def read(spec: Any) -> Any:
        asked.append(spec.environment)
        return real(spec)

    pair.read = read  # type: ignore[method-assign]
    result = failover.run(pair, confirm=lambda _: None, timeout=60, **GUARD)
    assert result.promoted and result.decision == "promote-unreachable"
    # two tries in the preflight (no re-read after an answer nobody waited for), one fence try once promoted
    assert asked.count("gold") == 3, asked

"""Waits: one live line on a terminal, plain lines every 5 s otherwise (Pair.wait with a fake clock)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from rolegen.errors import RolegenError
from rolegen.offline.spec import Spec
from rolegen.procedures.base import Pair

REPO = Path(__file__).resolve().parent.parent


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """time.monotonic advances only when the wait sleeps."""
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


def _pair(log: list[str]) -> Pair:
    specs = [Spec.from_dict(yaml.safe_load((REPO / "environments" / f"{env}.yaml").read_text()))
             for env in ("gold", "golddr")]
    return Pair(REPO / "environments", specs[1], specs[0], {}, log=log.append)


def _after(seconds: float, clock: list[float]) -> Callable[[], bool]:
    end = clock[0] + seconds
    return lambda: clock[0] >= end


def test_plain_output_is_a_line_every_5s_with_the_gap(clock: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout", io.StringIO())
    log: list[str] = []
    _pair(log).wait("golddr to replay", _after(12, clock), 60, every=1, gap=lambda: 3 << 20)
    assert log == ["   ... waiting for golddr to replay: 5s of 60s, 3.0 MiB to go",
                   "   ... waiting for golddr to replay: 10s of 60s, 3.0 MiB to go"]


def test_terminal_gets_one_line_rewritten_in_place(clock: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    tty = Tty()
    monkeypatch.setattr("sys.stdout", tty)
    log: list[str] = []
    _pair(log).wait("gold to report leader", _after(3, clock), 60, every=1)
    assert log == []
    out = tty.getvalue()
    assert out.count("\n") == 1 and out.endswith("   ... gold to report leader: done after 3s\n")
    assert "\r\x1b[2K   ... waiting for gold to report leader: 2s of 60s" in out


def test_timeout_ends_the_live_line_then_fails(clock: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    tty = Tty()
    monkeypatch.setattr("sys.stdout", tty)
    with pytest.raises(RolegenError, match="timed out after 5s waiting for x"):
        _pair([]).wait("x", lambda: False, 5, every=1)
    assert tty.getvalue().endswith("   ... x: timed out after 5s\n")  # the last look is at the deadline


def test_watch_redraws_in_place_on_a_terminal(clock: list[float]) -> None:
    from rolegen.progress import watch

    frames = iter(["one\n", "two\n"])
    tty = Tty()
    watch(lambda: next(frames), 2, stream=tty, count=2)
    assert tty.getvalue().count("\x1b[H\x1b[2J") == 2 and tty.getvalue().endswith("(Ctrl-C stops)\ntwo\n")
    plain = io.StringIO()
    frames = iter(["one\n", "two\n"])
    watch(lambda: next(frames), 2, stream=plain, count=2)
    lines = plain.getvalue().splitlines()
    assert [line for line in lines if not line.startswith("--- every 2s, ")] == ["one", "two"]


def test_status_watch_repeats_until_ctrl_c_then_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from rolegen.cli import app
    from rolegen.commands import status

    monkeypatch.setattr(status, "run", lambda *args: status.StatusResult([]))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", sleep)
    result = CliRunner().invoke(app, ["status", "--watch", "--interval", "1.5"])
    assert result.exit_code == 130
    assert result.stdout.count("--- every 1.5s, ") == 2 and result.stdout.count("\nhealthy\n") == 2
    assert sleeps == [1.5, 1.5]

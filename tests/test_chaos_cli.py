"""`rolegen lab chaos` wiring, with the runner replaced by a stand-in (no lab): which schedules run, what a failing
one leaves behind (a replay file the next `--replay` runs again, op for op), exit codes and formats."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen_lab.drills.chaos import commands as chaos_cmd
from rolegen_lab.drills.chaos import schedule as sched
from rolegen_lab.drills.chaos.checker import Final, Observations, Verdict, Violation
from rolegen_lab.drills.chaos.result import ChaosResult
from rolegen_lab.drills.observe import Endpoints

runner = CliRunner()


class StandInRun:
    """Records the schedules it is asked to run; a seed in FAILING fails with a lost write."""

    ran: ClassVar[list[sched.Schedule]] = []
    failing: ClassVar[set[int | None]] = set()

    def __init__(self, control: Any, schedule: sched.Schedule, **_: Any) -> None:
        self.schedule = schedule

    def run(self) -> ChaosResult:
        StandInRun.ran.append(self.schedule)
        obs = Observations(acknowledged=[1, 2], acknowledged_at=[1.0, 2.0], acknowledged_by=["gold", "gold"],
                           missing=set(), final=Final("gold", True, 0))
        bad = self.schedule.seed in StandInRun.failing
        verdict = Verdict([Violation("lost-write", "1 acknowledged write(s) lost")] if bad else [])
        return ChaosResult(self.schedule, verdict, obs, recovery=4.0, duration=10.0)


class StandInLab:
    """The control channel of a lab with the bundled sites, gold its baseline: only `info` is asked."""

    def request(self, op: str, **_: Any) -> Any:
        assert op == "info"
        return {"sites": {"gold": {}, "golddr": {}}, "baseline": "gold"}


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    StandInRun.ran, StandInRun.failing = [], set()
    monkeypatch.setattr(chaos_cmd, "ChaosRun", StandInRun)
    monkeypatch.setattr(chaos_cmd, "connect", lambda root: StandInLab())
    monkeypatch.setattr(chaos_cmd, "restore_baseline", lambda *a, **k: type("R", (), {"passed": True})())
    return tmp_path


def test_seeds_run_in_a_row_and_a_failing_schedule_is_saved_for_replay(stand_in: Path) -> None:
    StandInRun.failing = {8}
    result = runner.invoke(app, ["lab", "chaos", "--seed", "7", "--schedules", "3", "--minutes", "0.5",
                                 "--out", str(stand_in), "-f", "json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert [r["seed"] for r in data["results"]] == [7, 8, 9]
    assert data["summary"]["failing_seeds"] == [8] and data["summary"]["violations"]["lost-write"] == 1
    saved = stand_in / "chaos-seed-8.yaml"
    assert data["results"][1]["replay_file"] == str(saved)
    assert sched.load(saved) == sched.generate(8, seconds=30, ttl=chaos_cmd.LAB_TTL)

    StandInRun.ran = []
    again = runner.invoke(app, ["lab", "chaos", "--replay", str(saved), "--out", str(stand_in)])
    assert again.exit_code == 1
    assert [s.ops for s in StandInRun.ran] == [sched.load(saved).ops]  # the same ops at the same offsets
    assert f"replay: rolegen lab chaos --replay {saved}" in again.stdout


def test_all_passing_exits_0_with_the_summary_table(stand_in: Path) -> None:
    result = runner.invoke(app, ["lab", "chaos", "--seed", "3", "--schedules", "2", "--out", str(stand_in)])
    assert result.exit_code == 0, result.output
    assert "PASS seed 3" in result.stdout and "PASS seed 4" in result.stdout
    assert "| 2 | 0 | none | 4 |" in result.stdout
    assert not list(stand_in.glob("chaos-seed-*"))


def test_a_broken_replay_file_is_a_usage_error_before_the_lab_is_asked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "rolegen-chaos/1", "ops": [{"at": 1, "op": "meteor"}]}')
    result = runner.invoke(app, ["lab", "chaos", "--replay", str(bad), "--root", str(tmp_path)])
    assert result.exit_code == 2 and "operation 1 is not one of" in result.stderr


def test_no_lab_running_names_the_command_to_start_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["lab", "chaos", "--seed", "1", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "error: no lab is running" in result.stderr and "hint: start it with: rolegen lab up" in result.stderr
    assert os.listdir(tmp_path) == []  # nothing saved, nothing started


def test_seeded_schedules_are_drawn_on_the_labs_own_sites_and_return_to_its_baseline() -> None:
    lab = Endpoints({"sites": {"east": {}, "west": {}}, "baseline": "west"})
    [schedule] = chaos_cmd.schedules(chaos_cmd.ChaosOptions(seed=5, minutes=2), lab)
    assert schedule.baseline == "west"
    argvs = [a for op in schedule.ops for a in [op.args.get("argv"), *op.args.get("argvs", [])] if a]
    targets = {a[a.index(o) + 1] for a in argvs for o in ("--to", "--env") if o in a}
    sites = {op.args["site"] for op in schedule.ops if op.args.get("site")}
    assert targets and sites and targets | sites <= {"east", "west"}

"""The drill runner's bookkeeping that decides which losses a scenario allows, the cues of its rolegen runs, and
who plays the scenario's roles."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import yaml

from rolegen_lab.drills.runner import Drill
from rolegen_lab.drills.scenarios import SCENARIOS
from rolegen_lab.drills.steps import Answer, Cue, Fault, Rolegen, Scenario, Write


class SlowLab:
    """A lab whose site loss kills the members at once, then takes a while stopping the control plane."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.killed_at: float | None = None

    def request(self, op: str, **_: Any) -> Any:
        if op == "info":
            return {"sites": {}}
        self.killed_at = time.monotonic()
        time.sleep(self.seconds)
        return "gold"


def test_a_fault_is_marked_when_it_starts_not_when_the_lab_finishes_injecting_it() -> None:
    # A site loss's window must open when its members die: marking the end of the request (the control plane's
    # shutdown) would count the writes acknowledged just before the kill as losses outside the window.
    lab = SlowLab(0.3)
    drill = Drill(lab, Scenario("s", "test", (Write(0),)))  # type: ignore[arg-type]
    drill.step(Fault("lose", {"site": "gold"}, mark="fault"))
    assert lab.killed_at is not None
    assert drill.marks["fault"] <= lab.killed_at
    assert lab.killed_at - drill.marks["fault"] < 0.1
    assert "(from " in drill.report.events[-1][1]


class RecordingLab:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def request(self, op: str, **args: Any) -> Any:
        if op == "info":
            return {"sites": {}, "environments": str(Path(__file__).resolve().parents[1] / "environments"),
                    "kubeconfig": "/nonexistent"}
        self.calls.append((op, args))
        return {} if op == "heal_all" else ["patroni-0"]


# Stands for a rolegen run: logs a runbook step, waits a moment, then asks on its terminal.
FAKE_RUN = """
import sys, time
print("[3/6] Wait for the LSN gate")
time.sleep(1.0)
sys.stdout.write("Apply these changes to golddr (context golddr)? [y/N]: ")
sys.stdout.flush()
answer = sys.stdin.readline().strip()
print("tty" if sys.stdin.isatty() else "no tty", "answer", answer)
sys.exit(0 if answer == "y" else 3)
"""


def test_cues_fire_on_the_runs_output_and_answer_its_prompt_on_a_terminal(tmp_path: Path) -> None:
    lab = RecordingLab()
    drill = Drill(lab, Scenario("s", "test", (Write(0),)),  # type: ignore[arg-type]
                  rolegen=[sys.executable, "-c", FAKE_RUN])
    drill._outdir = tmp_path
    fault = Fault("delete_pod", {"site": "gold", "member": "leader"})
    drill.rolegen_step(Rolegen("apply", "golddr", yes=False, during=(
        Cue(fault, on_output="Wait for the LSN gate"), Cue(Answer("y"), on_output="Apply these changes"))))
    [run] = drill.report.runs
    assert run.exit_code == 0, run.tail
    assert run.tail[-1].endswith("tty answer y")
    assert lab.calls == [("delete_pod", {"site": "gold", "member": "leader"})]
    events = [e for _, e in drill.report.events]
    assert events.index(next(e for e in events if "delete_pod" in e)) < events.index(
        next(e for e in events if "answered 'y'" in e))
    assert drill.report.problems == []


def test_a_cue_the_run_never_reaches_is_reported_and_the_run_is_judged_as_usual(tmp_path: Path) -> None:
    lab = RecordingLab()
    drill = Drill(lab, Scenario("s", "test", (Write(0),)),  # type: ignore[arg-type]
                  rolegen=[sys.executable, "-c", "print('[1/6] Preflight'); raise SystemExit(1)"])
    drill._outdir = tmp_path
    drill.rolegen_step(Rolegen("switchover", "golddr", expect="safe", during=(
        Cue(Fault("delete_pod", {"site": "gold", "member": "leader"}), on_output="Wait for the LSN gate"),)))
    assert lab.calls == []  # the fault was never injected
    assert any("cue not reached" in e for _, e in drill.report.events)
    assert drill.report.runs[0].problem() is not None  # exit 1 without a hint: not safe


def test_missing_leaves_names_each_lost_hand_set_key() -> None:
    from rolegen_lab.drills.runner import missing_leaves

    live = {"postgresql": {"parameters": {"work_mem": "4MB"}}, "ttl": 30}
    holds = {"postgresql": {"parameters": {"work_mem": "7MB"}}, "failsafe_mode": True, "standby_cluster": None}
    assert missing_leaves(live, holds) == ["postgresql.parameters.work_mem (want '7MB', found '4MB')",
                                           "failsafe_mode (want True, found None)"]
    assert missing_leaves({"standby_cluster": {"host": "x"}}, {"standby_cluster": None}) == [
        "standby_cluster (want None, found {'host': 'x'})"]


def test_a_drill_that_set_wan_settings_turns_them_off_after_its_final_heal() -> None:
    # heal_all keeps WAN settings (the link's character); a drill must not leave its slow link to the next one.
    for steps, expected in (((Fault("wan", {"latency_ms": 300}),), [("heal_all", {}), ("wan", {})]),
                            ((Write(0),), [("heal_all", {})])):
        lab = RecordingLab()
        drill = Drill(lab, Scenario("s", "test", steps), timeout=-29.9)  # type: ignore[arg-type]
        drill.finish()  # no sites in this stand-in: it never converges, and gives up at once
        assert lab.calls == expected


class SpecsLab:
    """A lab that only answers `info`: its environments directory (`env_dir`) and no sites."""

    def __init__(self, env_dir: Path) -> None:
        self.env_dir = env_dir

    def request(self, op: str, **_: Any) -> Any:
        assert op == "info"
        return {"sites": {}, "environments": str(self.env_dir), "kubeconfig": "/nonexistent", "baseline": "gold"}


def test_the_drill_casts_the_site_the_labs_specs_declare_leader_when_it_runs(tmp_path: Path) -> None:
    # The lab's specs after a switchover to golddr: a drill started now plays `leader` with golddr.
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    for name, role in (("gold", "standby-leader"), ("golddr", "leader")):
        data = yaml.safe_load((Path(__file__).resolve().parents[1] / "environments" / f"{name}.yaml").read_text())
        (env_dir / f"{name}.yaml").write_text(yaml.safe_dump({**data, "role": role}, sort_keys=False))
    drill = Drill(SpecsLab(env_dir), SCENARIOS["switchover"])  # type: ignore[arg-type]
    assert (drill.cast().leader, drill.cast().standby) == ("golddr", "gold")
    # A given leader (restore_baseline's) wins over the specs.
    assert Drill(SpecsLab(env_dir), SCENARIOS["switchover"], leader="gold").cast().leader == "gold"  # type: ignore[arg-type]

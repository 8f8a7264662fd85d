"""The rolegen runs of a drill (a mixin of rolegen_lab.drills.runner.Drill): each one a real `rolegen` CLI process in
its own session (so it can be SIGKILLed mid-step, and two can run at once) with the lab's operator kubeconfig and
environments directory; its `Cue`s (a lab operation, an answer at its prompt, another run) fire when its output
shows a given line; and `Render`, an operator declaring a role by hand.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rolegen.errors import RolegenError
from rolegen_lab.control.channel import Control
from rolegen_lab.drills.observe import Endpoints
from rolegen_lab.drills.report import Report, RunRecord
from rolegen_lab.drills.steps import Answer, Cue, Fault, Render, Rolegen

POLL = 0.1  # seconds between looks at a running run's output


class StepFailed(Exception):
    """A step could not complete: the rest of the scenario is skipped, the lab is healed and checked."""


def _merge(data: dict[str, Any], edit: dict[str, Any]) -> None:
    for key, value in edit.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            _merge(data[key], value)
        else:
            data[key] = value


class RolegenRuns:
    control: Control
    ep: Endpoints
    report: Report
    timeout: float
    rolegen: list[str]
    marks: dict[str, float]
    groups: list[list[RunRecord]]
    _outdir: Path
    event: Callable[[str], None]
    now: Callable[[], float]

    def rolegen_step(self, step: Rolegen) -> None:
        for kill_after in (*step.kill_after, None):
            at = self.now()
            proc, out, tty = self.spawn(step)
            record = self.wait(step, proc, out, kill_after, at, tty=tty)
            if record.killed_after is None:
                break
        if step.mark:
            self.marks[step.mark] = time.monotonic()
        if record.expect == "ok" and record.exit_code != 0:
            raise StepFailed(f"rolegen {step.verb} {step.to} failed: the scenario cannot continue")

    def spawn(self, step: Rolegen) -> tuple[subprocess.Popen[bytes], Path, int | None]:
        """Start a run; with `yes=False` its stdin is a terminal (returned: the end answers are typed into)."""
        out = self._outdir / f"run-{len(self.report.runs) + sum(map(len, self.groups))}-{time.monotonic_ns()}.log"
        env_dir = self.ep.env_dir
        if step.workspace == "colleague":  # another operator's clone, as of now
            env_dir = self._outdir / f"colleague-{time.monotonic_ns()}"
            shutil.copytree(self.ep.env_dir, env_dir)
        argv = [*self.rolegen, *step.argv(self.timeout), "--dir", str(env_dir),
                "--kubeconfig", str(self.ep.kubeconfig)]
        tty, stdin = (os.openpty() if not step.yes else (None, subprocess.DEVNULL))
        # Unbuffered: cues watch the output while the run runs.
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            with open(out, "wb") as sink:
                proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, stdin=stdin,
                                        start_new_session=True, env=env)
        finally:
            if tty is not None:
                os.close(stdin)  # the child holds its end
        who = " (a colleague's clone)" if step.workspace == "colleague" else ""
        self.event(f"rolegen {' '.join(step.argv(self.timeout)[:3])} started{who}")
        return proc, out, tty

    def wait(self, step: Rolegen, proc: subprocess.Popen[bytes], out: Path, kill_after: float | None,
             started: float, grouped: bool = False, tty: int | None = None) -> RunRecord:
        """Wait for a run, firing its cues (SIGKILL it after `kill_after`); a `grouped` run is judged with its
        group."""
        record = RunRecord(step.verb, step.to, None if grouped else step.expect, started)
        limit = kill_after if kill_after is not None else 4 * (step.timeout or self.timeout) + 60
        deadline, cues = time.monotonic() + limit, list(step.during)
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                while cues and self._due(cues[0], out, self.now() - started):
                    self._fire(cues.pop(0), tty)
                time.sleep(POLL)
        finally:
            if tty is not None:
                os.close(tty)
        ended = proc.poll() is not None
        if not ended:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if kill_after is None:
                self.report.problems.append(f"rolegen {step.verb} {step.to} still running after {limit:.0f}s")
            else:
                record.killed_after = kill_after
        record.exit_code = proc.returncode if ended else None
        for cue in cues:
            self.event(f"cue not reached before the run ended: {cue.on_output or cue.after}")
        record.seconds = self.now() - record.started
        text = out.read_text(errors="replace") if out.exists() else ""
        record.tail = [line for line in text.splitlines() if line.strip()][-8:]
        if kill_after is not None and record.killed_after is None:
            record.expect = "safe"  # ended on its own before the kill: it must still end safely
        self.report.runs.append(record)
        how = f"SIGKILLed after {kill_after:g}s" if record.killed_after is not None else f"exit {record.exit_code}"
        self.event(f"rolegen {step.verb} {step.to}: {how} ({record.last_line})")
        return record

    @staticmethod
    def _due(cue: Cue, out: Path, elapsed: float) -> bool:
        if cue.on_output is not None:
            with contextlib.suppress(OSError):
                return cue.on_output in out.read_text(errors="replace")
            return False
        return cue.after is not None and elapsed >= cue.after

    def _fire(self, cue: Cue, tty: int | None) -> None:
        """Do what a cue says; a cue that cannot be done is a problem of the drill, and the run goes on."""
        action = cue.action
        seen = f"on '{cue.on_output}'" if cue.on_output else f"after {cue.after:g}s"
        if isinstance(action, Answer):
            if tty is None:
                self.report.problems.append(f"cue {seen}: an answer for a run without a terminal (yes=True)")
                return
            os.write(tty, action.text.encode() + b"\n")
            self.event(f"{seen}: answered {action.text!r} at the prompt")
        elif isinstance(action, Fault):
            try:
                result = self.control.request(action.op, **action.args)
            except RolegenError as exc:
                self.report.problems.append(f"cue {seen}: lab {action.op} failed: {exc.message}")
                return
            args = " ".join(f"{k}={v}" for k, v in sorted(action.args.items()))
            self.event(f"{seen}: lab {action.op} {args}: {result}")
        else:
            self.event(f"{seen}: another rolegen run while this one waits")
            try:
                self.rolegen_step(action)
            except StepFailed as exc:
                self.report.problems.append(f"cue {seen}: {exc}")

    def render_step(self, step: Render) -> None:
        """Edit the spec file by hand (if `edit`), then `rolegen render --env ENV --role ROLE`."""
        path = self.ep.env_dir / f"{step.env}.yaml"
        if step.edit:
            data = yaml.safe_load(path.read_text())
            _merge(data, step.edit)
            path.write_text(yaml.safe_dump(data, sort_keys=False))
        argv = [*self.rolegen, "render", "--env", step.env, "--role", step.role, "--dir", str(self.ep.env_dir)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        last = ([line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()] or ["(no output)"])[-1]
        self.event(f"rolegen render --env {step.env} --role {step.role}" + (" (spec edited)" if step.edit else "")
                   + f": exit {proc.returncode} ({last})")
        if proc.returncode != 0:
            raise StepFailed(f"rolegen render --env {step.env} --role {step.role} failed: {last}")

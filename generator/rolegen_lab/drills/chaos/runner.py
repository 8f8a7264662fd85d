"""Runs one chaos schedule on the running lab: the drills' workload, prober and log watch, plus every prober
round and the PVCs; each op at its offset (rolegen runs in the background, so faults land in the middle of
them); then heal everything, recover with the documented commands (recovery.next_command), and hand the
observations to the checker.

The lab is reached as the drills reach it: its control channel, real `rolegen` processes with the lab's
kubeconfig and environments, the databases directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rolegen.errors import RolegenError
from rolegen_lab.control.channel import Control
from rolegen_lab.drills.chaos import recovery
from rolegen_lab.drills.chaos.checker import Final, Observations, RunSeen, check
from rolegen_lab.drills.chaos.result import ChaosResult
from rolegen_lab.drills.chaos.schedule import OPS, Op, Schedule
from rolegen_lab.drills.chaos.watch import PvcWatch, RoundProber
from rolegen_lab.drills.observe import LogWatch
from rolegen_lab.drills.runner import Drill
from rolegen_lab.drills.steps import Scenario
from rolegen_lab.drills.workload import AckWriter, missing_ids

# The rolegen command a refusal's hint names (never its data-loss options: a hint offering those is a choice
# the person makes, not a step to follow), or "re-run" for the same command.
HINT_RE = re.compile(r"\brolegen ((?:switchover|failover|failback) --to [\w-]+|(?:reseed|apply) --env [\w-]+)")
MAX_RECOVERY_COMMANDS = 8
# A refusal whose hint says to restart a Pod first (the failover's target whose lock holder lags one of its own
# members): the on-call person deletes it, as the hint says, before the next command.
POD_HINT_RE = re.compile(r"kubectl --context (\S+) -n \S+ delete pod ([\w-]+)")


def hinted(run: RunSeen) -> list[str] | None:
    """The argv a failed run's hint names, as a person following it would type it."""
    if run.killed or run.exit_code in (0, None):
        return None
    hints = [line for line in run.output if line.startswith("hint:")]
    for line in hints:
        if found := HINT_RE.search(line):
            return found.group(1).split()
    if any("re-run" in line for line in hints):
        return [a for a in run.argv if a != "--accept-data-loss"]
    return None


def pod_to_delete(run: RunSeen) -> tuple[str, str] | None:
    """(context, Pod) a failed run's hint says to delete first (the lab's contexts are its sites' names)."""
    if run.killed or run.exit_code in (0, None):
        return None
    for line in run.output:
        if line.startswith("hint:") and (found := POD_HINT_RE.search(line)):
            return found.group(1), found.group(2)
    return None


def parse_json(lines: tuple[str, ...]) -> dict[str, Any] | None:
    text = "\n".join(lines)
    start = text.find("{")
    if start < 0:
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class ChaosRun:
    def __init__(self, control: Control, schedule: Schedule, *, timeout: float = 30, recover_within: float = 300,
                 log: Callable[[str], None] = lambda _: None, rolegen: list[str] | None = None) -> None:
        self.control, self.schedule, self.timeout, self.log = control, schedule, timeout, log
        self.recover_within = recover_within
        self.rolegen = rolegen or [sys.executable, "-m", "rolegen"]
        # The drill gives the lab's endpoints and its independent views (Patroni, databases, API objects).
        self.view = Drill(control, Scenario("chaos", "", ()), timeout=timeout)
        self.ep = self.view.ep
        self.obs = Observations()
        self.events: list[tuple[float, str]] = []
        self._runs_lock = threading.Lock()
        self._background: list[threading.Thread] = []
        self._t0 = time.monotonic()
        self._outdir = Path()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def event(self, text: str) -> None:
        self.events.append((self.now(), text))
        self.log(f"{self.now():7.2f}s  {text}")

    # -- the schedule ------------------------------------------------------------------------------------------
    def run(self) -> ChaosResult:
        baseline = self.schedule.baseline
        if not self.view.leads(baseline, follower=True):
            raise RolegenError(f"the lab is not at the chaos baseline ({baseline} leading, its peer streaming): "
                               f"{self.view.roles()}", hint="rolegen lab heal, then the recovery the README's "
                               f"runbooks give (rolegen failback --to {baseline}); or rolegen lab down && up")
        self._t0 = time.monotonic()
        watch = LogWatch(self.ep)
        writer = AckWriter([self.ep.master_dsn(s) for s in self.ep.sites])
        try:
            writer.start()
        except TimeoutError:
            raise RolegenError("no site of the lab accepts writes: the workload cannot start",
                               hint="rolegen lab status") from None
        prober = RoundProber(self.ep.member_dsns())
        prober.start(self._t0)
        pvcs = PvcWatch(self.ep, every=2.0).start(self._t0)  # kubectl costs CPU the lab needs
        self._outdir = Path(tempfile.mkdtemp(prefix="rolegen-chaos-"))
        recovered_in: float | None = None
        try:
            for op in self.schedule.ops:
                time.sleep(max(0.0, op.at - self.now()))
                self.execute(op)
            for thread in self._background:
                thread.join()
            healed = time.monotonic()
            in_force = {s: {k: v for k, v in f.items() if v} for s, f in self.control.request("heal_all").items()}
            self.event(f"heal all: {({s: f for s, f in in_force.items() if f}) or 'no fault in force'}")
            if any(op.op == "wan" for op in self.schedule.ops):
                self.control.request("wan")  # heal_all keeps the link's character: back to loopback for recovery
            if self.recover(baseline):
                recovered_in = time.monotonic() - healed
            time.sleep(1.0)  # writes on the recovered pair
            self.final_state()
        finally:
            log = writer.stop()
            prober.stop()
            pvcs.stop()
            shutil.rmtree(self._outdir, ignore_errors=True)
        obs = self.obs
        obs.acknowledged, obs.acknowledged_at = log.acknowledged, [t - self._t0 for t in log.acknowledged_at]
        obs.acknowledged_by = [self.ep.sites[i] if 0 <= i < len(self.ep.sites) else "?" for i in log.acknowledged_by]
        obs.dual_primaries, obs.writable = prober.dual, prober.rounds
        obs.timelines, obs.pvc_deletions = watch.timelines(), pvcs.deletions
        self.count_missing()
        return ChaosResult(self.schedule, check(obs), obs, self.events, recovered_in, self.now())

    def execute(self, op: Op) -> None:
        kind = OPS[op.op]
        if kind.runs == "lab":
            assert kind.lab_op is not None
            started = self.now()
            try:
                result = self.control.request(kind.lab_op, **op.args)
                self.event(f"{op.text()}: {result}")
            except RolegenError as exc:  # e.g. no member leads right now: the fault does not apply
                self.event(f"{op.text()}: the lab refused: {exc.message}")
            finally:
                # The members die and the links drop somewhere inside the request (the API server's stop takes
                # most of its second): its whole span, as the drills' loss window.
                if op.op == "lose":
                    self.obs.site_losses.append((started, self.now(), str(op.args["site"])))
        elif kind.runs in ("rolegen", "status"):
            self.launch(list(op.args["argv"]))
        elif kind.runs == "twice":
            for argv in op.args["argvs"]:
                self.launch(list(argv))
        elif kind.runs == "killed":
            self.launch(list(op.args["argv"]), kill_after=float(op.args["kill_after"]))
        elif kind.runs == "hint":
            with self._runs_lock:
                last = next((r for r in reversed(self.obs.runs) if hinted(r)), None)
            if last is None:
                self.event("follow the hint: no refusal with a hint to follow")
            else:
                argv = hinted(last) or []
                self.event(f"follow the hint of `{last.text}`: rolegen {' '.join(argv)}")
                self.launch(argv)

    # -- rolegen runs ------------------------------------------------------------------------------------------
    def launch(self, argv: list[str], kill_after: float | None = None) -> None:
        def body() -> None:
            if kill_after is not None and self.call(argv, kill_after=kill_after).killed:
                self.call(argv)  # the re-run
            elif kill_after is None:
                self.call(argv)
        thread = threading.Thread(target=body, name="chaos-rolegen", daemon=True)
        self._background.append(thread)
        thread.start()

    def call(self, argv: list[str], kill_after: float | None = None, recovery_run: bool = False) -> RunSeen:
        extra = [] if argv[0] == "status" else ["--yes", "--timeout", f"{self.timeout:g}"]
        full = [*self.rolegen, *argv, *extra, "--dir", str(self.ep.env_dir), "--kubeconfig", str(self.ep.kubeconfig)]
        out = self._outdir / f"run-{time.monotonic_ns()}.log"
        started = self.now()
        self.event(f"rolegen {' '.join(argv)} started" + (f" (SIGKILL after {kill_after:g}s)" if kill_after else ""))
        with open(out, "wb") as sink:
            proc = subprocess.Popen(full, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=dict(os.environ))
        limit = kill_after if kill_after is not None else 4 * self.timeout + 60
        code: int | None = None
        killed = False
        try:
            code = proc.wait(limit)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = kill_after is not None
        output = tuple(line for line in out.read_text(errors="replace").splitlines() if line.strip())
        run = RunSeen(tuple(argv), started, self.now(), code, killed, output, recovery_run)
        with self._runs_lock:
            self.obs.runs.append(run)
        if code == 0 and "--accept-data-loss" in argv:
            self.obs.accepted.append((run.ended, argv[argv.index("--to") + 1]))
        how = "SIGKILLed" if killed else f"exit {code}"
        self.event(f"rolegen {' '.join(argv)}: {how} ({output[-1] if output else 'no output'})")
        return run

    # -- after the schedule ------------------------------------------------------------------------------------
    def recover(self, baseline: str) -> bool:
        """The documented commands until the baseline leads with its peer streaming (False: not within bound)."""
        deadline = time.monotonic() + self.recover_within
        settle = time.monotonic() + 15  # Patroni reconnects after the heal: act only on what persists
        commands = 0
        while time.monotonic() < deadline:
            status = self.call(["status", "-f", "json"], recovery_run=True)
            seen = parse_json(status.output)
            command = recovery.next_command(seen, baseline)
            if command is None and self.converged(baseline):
                self.event(f"recovered: {baseline} leads, its peer streams, status healthy")
                return True
            settled = time.monotonic() >= settle or bool(seen and seen.get("healthy"))
            if command and settled and commands < MAX_RECOVERY_COMMANDS:
                commands += 1
                pod = pod_to_delete(self.call(command, recovery_run=True))
                if pod is not None:
                    self.delete_pod(*pod)
            else:
                time.sleep(3)
        self.event(f"NOT recovered within {self.recover_within:.0f}s: {self.view.roles()}")
        return False

    def delete_pod(self, site: str, member: str) -> None:
        try:
            deleted = self.control.request("delete_pod", site=site, member=member, force=False)  # as kubectl
            self.event(f"delete Pod {site}/{member}, as the hint says: {deleted}")
        except RolegenError as exc:
            self.event(f"delete Pod {site}/{member}: the lab refused: {exc.message}")
        time.sleep(3)  # its lock released, the race run: the next status shows the new lock holder

    def converged(self, site: str) -> bool:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.view.leads(site, follower=True):
                return True
            time.sleep(0.5)
        return False

    def final_state(self) -> None:
        """The final state, read independently of rolegen's procedures (and `rolegen status`'s exit)."""
        final = self.obs.final = Final()
        for site in self.ep.sites:
            if self.view.leads(site, follower=True):
                final.leader, final.follower_streams = site, True
            elif final.leader is None and self.view.leads(site, follower=False):
                final.leader = site
        final.roles = self.view.roles()
        final.status_exit = self.call(["status"], recovery_run=True).exit_code

    def count_missing(self) -> None:
        """The acknowledged writes missing on the final leader (left None when there is none to ask)."""
        leader = self.obs.final.leader
        if leader is not None:
            try:
                self.obs.missing = set(missing_ids(self.ep.master_dsn(leader), self.obs.acknowledged))
            except Exception as exc:  # psycopg errors: the count is impossible, which the verdict says
                self.event(f"cannot count the writes on {leader}: {exc}")

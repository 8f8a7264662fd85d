"""Runs one drill scenario against a running lab and returns its report.

The lab is reached only through its control channel (faults, `info`) and as a user reaches it: rolegen runs are
real `rolegen` CLI processes (own session, so one can be SIGKILLed mid-step, and two can run at once) with the
lab's kubeconfig and environments directory; the workload writes through the sites' `<release>-master`
endpoints; the prober and the log watch look at each member directly.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rolegen.cluster.kubectl import cluster_for
from rolegen.cluster.site_state import LockWatch, SiteState, read_site
from rolegen.errors import RolegenError
from rolegen.offline.workspace import load_workspace
from rolegen_lab.control.channel import Control
from rolegen_lab.drills.observe import Endpoints, LogWatch, Prober, master_writable, patroni_lead, patroni_states
from rolegen_lab.drills.report import Report, RunRecord, next_command, split_losses
from rolegen_lab.drills.runs import RolegenRuns, StepFailed
from rolegen_lab.drills.steps import (
    EITHER,
    LEADER,
    Cast,
    Concurrent,
    Converge,
    DrillStep,
    ExpectConfig,
    Fault,
    FollowHint,
    Render,
    Return,
    Rolegen,
    Scenario,
    WaitNoLeader,
    Write,
    cast_of,
    resolve,
)
from rolegen_lab.drills.workload import AckWriter, missing_ids

# Writes acknowledged this long before a site-loss mark may not have shipped yet: they belong to its window.
SHIP_SLACK = 1.0


class Drill(RolegenRuns):
    """Runs `scenario` (written in roles) on the lab: `leader` is the site that plays its leader (None: the one the
    lab's specs declare leader when the drill starts), the other site plays its standby."""

    def __init__(self, control: Control, scenario: Scenario, *, timeout: float = 60,
                 log: Callable[[str], None] = lambda _: None, rolegen: list[str] | None = None,
                 leader: str | None = None) -> None:
        self.control, self.scenario, self.timeout, self.log = control, scenario, timeout, log
        self.leader = leader
        self.rolegen = rolegen or [sys.executable, "-m", "rolegen"]
        self.ep = Endpoints(control.request("info"))
        self.report = Report(scenario.name, scenario.summary)
        self.marks: dict[str, float] = {}
        self.mark_sites: dict[str, str] = {}  # mark -> the site its fault hit
        self.groups: list[list[RunRecord]] = []
        self._t0 = time.monotonic()
        self._outdir = Path()  # each run's output, in a directory of its own while run() runs

    # -- the drill ---------------------------------------------------------------------------------------------
    def run(self) -> Report:
        self._t0 = time.monotonic()
        sites = self.cast()
        self.scenario = resolve(self.scenario, sites)  # from here on, the lab's site names
        self.report.summary = self.scenario.summary
        if self.scenario.automatic is not None and self.scenario.automatic != bool(self.ep.info.get("automatic")):
            raise RolegenError(
                f"drill {self.scenario.name} runs on a lab " + ("with" if self.scenario.automatic else "without")
                + " automatic failover", hint="rolegen lab down, then rolegen lab up"
                + (" --automatic" if self.scenario.automatic else ""))
        wanted, running = self.scenario.replication, self.ep.info.get("replication", "async")
        if wanted is not None and wanted != running:
            raise RolegenError(f"drill {self.scenario.name} runs on a lab with witness replication {wanted} (this one "
                               f"runs {running})", hint="rolegen lab down, then rolegen lab up "
                               + ("--sync" if wanted == "sync" else "--automatic"))
        watch = LogWatch(self.ep)
        if self.scenario.from_baseline and not self.leads(sites.leader, follower=True):
            raise RolegenError(
                f"the lab is not at the drills' baseline ({sites.leader}, the site the specs declare leader, leading, "
                f"its peer streaming from it): {self.roles()}",
                hint=f"rolegen lab heal, then rolegen failback --to {sites.leader} --dir {self.ep.env_dir} "
                f"--kubeconfig {self.ep.kubeconfig}; or rolegen lab down && rolegen lab up")
        writer = AckWriter([self.ep.master_dsn(s) for s in self.ep.sites])
        try:
            writer.start()  # waits for a writable site
        except TimeoutError:
            raise RolegenError("no site of the lab accepts writes: the workload cannot start",
                               hint="rolegen lab status") from None
        prober = Prober(self.ep.member_dsns()).start(self._t0)
        self._outdir = Path(tempfile.mkdtemp(prefix="rolegen-drill-"))
        try:
            self.event(f"workload writing through {', '.join(s + ' master' for s in self.ep.sites)}")
            for number, step in enumerate(self.scenario.steps, 1):
                try:
                    self.step(step)
                except (StepFailed, RolegenError) as exc:
                    self.report.problems.append(f"step {number} ({type(step).__name__}): {exc}")
                    self.event(f"step {number} failed: {exc}; skipping the rest")
                    break
            self.finish()
            self.check_guards()
        finally:
            log = writer.stop()
            prober.stop()
            shutil.rmtree(self._outdir, ignore_errors=True)
        by = [self.ep.sites[i] if 0 <= i < len(self.ep.sites) else "?" for i in log.acknowledged_by]
        self.measure(log.acknowledged, log.acknowledged_at, len(log.unknown), log.longest_gap, by)
        self.report.timelines = watch.timelines()
        self.report.dual_primaries, self.report.probes = prober.dual, prober.probes
        self.report.duration = time.monotonic() - self._t0
        self.report.marks = {name: at - self._t0 for name, at in self.marks.items()}
        self.report.evaluate(self.scenario, self.groups)
        return self.report

    def check_guards(self) -> None:
        """On a lab with automatic failover, every standby guard still runs: one that exited disarmed it."""
        exited = sorted(s for s, up in (self.control.request("info").get("guards") or {}).items() if not up)
        logs = "<site>/pods/<pod>/guard.log" if self.ep.info.get("standby_guards") == "pod" else "guards/<site>.log"
        if exited:
            self.report.problems.append(f"the standby guard of {', '.join(exited)} exited (automatic failover "
                                        f"disarmed): see {self.ep.info.get('root')}/{logs}")

    def record_guard_roles(self, to: str) -> None:
        """With the standby guards as the chart's Pods, a failover a guard ran recorded the new roles in its Pod's
        copy of the specs only: before a failback to `to`, the operator records them in theirs (`rolegen render
        --role`, as docs/witness.md says), when the specs still declare `to` leader while its peer leads."""
        if self.ep.info.get("standby_guards") != "pod" or self.declared().get(to) != "leader":
            return
        peer = next(s for s in self.ep.sites if s != to)
        if self.api_view(peer).live_role != "leader":
            return
        self.event(f"{peer} leads while the specs declare {to} leader: the guard Pod's failover recorded the roles "
                   "in its own copy; the operator records them")
        self.render_step(Render(to, "standby-leader"))
        self.render_step(Render(peer, "leader"))

    def cast(self) -> Cast:
        """Who plays the scenario's roles: `self.leader` (or the site the lab's specs declare leader) and its peer."""
        return cast_of(load_workspace(self.ep.env_dir).specs, self.leader)

    def now(self) -> float:
        return time.monotonic() - self._t0

    def event(self, text: str) -> None:
        self.report.events.append((self.now(), text))
        self.log(f"{self.now():7.2f}s  {text}")

    def step(self, step: DrillStep) -> None:
        if isinstance(step, Write):
            time.sleep(step.seconds)
        elif isinstance(step, Fault):
            # The fault's moment is when it starts: a site loss kills the members first, then takes seconds to
            # stop the control plane; marking its end would shift the loss window past the kill.
            injected = time.monotonic()
            result = self.control.request(step.op, **step.args)
            if step.mark:
                self.marks[step.mark] = injected
                if "site" in step.args:
                    self.mark_sites[step.mark] = str(step.args["site"])
            args = " ".join(f"{k}={v}" for k, v in sorted(step.args.items()))
            self.event(f"lab {step.op} {args}".rstrip() + f": {result} (from {injected - self._t0:.2f}s)")
        elif isinstance(step, Rolegen):
            self.rolegen_step(step)
        elif isinstance(step, Concurrent):
            self.event(f"{len(step.runs)} rolegen runs at once")
            started = [(r, *self.spawn(r), self.now()) for r in step.runs]
            group = [self.wait(r, proc, out, None, at, grouped=True, tty=tty) for r, proc, out, tty, at in started]
            self.groups.append(group)
        elif isinstance(step, WaitNoLeader):
            # No leader reported, or a lock left unrenewed for a ttl of our own clock (a hung Patroni's Pod
            # still says leader): never renewTime against this machine's clock.
            watch = LockWatch()

            def no_leader() -> bool:
                view = self.api_view(step.site)
                return view.live_role is None or watch.stale(view, time.monotonic())

            self.until(no_leader, 60, f"no live leader of {step.site} in the API objects", every=0.1)
            self.event(f"{step.site}: no live leader lock in the API objects")
        elif isinstance(step, Converge):
            chosen = list(self.ep.sites) if step.leader == EITHER else [step.leader]
            self.until(lambda: any(self.leads(s, step.follower) for s in chosen), self.timeout,
                       f"{' or '.join(chosen)} to lead" + (" with its peer streaming from it" if step.follower else ""))
            if step.mark:
                self.marks[step.mark] = time.monotonic()
            leader = next((s for s in chosen if self.leads(s, step.follower)), " or ".join(chosen))
            self.event(f"{leader} leads" + (", peer streaming" if step.follower else ""))
        elif isinstance(step, FollowHint):
            for _ in range(step.runs):
                command = next_command(self.report.runs[-1]) if self.report.runs else None
                if command is None:
                    break
                self.event(f"following the hint: rolegen {command[0]} --to {command[1]}")
                self.rolegen_step(Rolegen(command[0], command[1], expect="safe"))  # type: ignore[arg-type]
        elif isinstance(step, Return):
            self.record_guard_roles(step.to)
            if self.declared().get(step.to) == "leader":
                self.event(f"the specs still declare {step.to} leader: no failback to run")
            else:
                self.rolegen_step(Rolegen("failback", step.to))
        elif isinstance(step, Render):
            self.render_step(step)
        elif isinstance(step, ExpectConfig):
            missing = missing_leaves(self.api_view(step.site).config or {}, step.holds)
            if missing:
                self.report.problems.append(f"{step.site}: DCS config not as expected: {', '.join(missing)}")
            self.event(f"{step.site} DCS config: " + (f"NOT as expected: {', '.join(missing)}" if missing else
                                                       "as expected"))

    def finish(self) -> None:
        """Heal every fault still in force, then wait until the pair converges (whoever leads)."""
        healed_at = time.monotonic()
        faults = self.control.request("heal_all")
        if any(isinstance(s, Fault) and s.op == "wan" for s in self.scenario.steps):
            self.control.request("wan")  # WAN settings outlive heal_all (the link, not a fault): this drill's go
            self.event("WAN settings off (set by this drill)")
        in_force = {s: {k: v for k, v in f.items() if v} for s, f in faults.items()}
        self.event(f"heal all: {({s: f for s, f in in_force.items() if f}) or 'no fault in force'}")
        deadline = time.monotonic() + self.timeout + 30
        while time.monotonic() < deadline:
            leader = next((s for s in self.ep.sites if self.leads(s, follower=True)), None)
            if leader is not None:
                self.report.final_roles = self.roles()
                if all(r["live"] == r["declared"] for r in self.report.final_roles.values()):
                    self.report.converged, self.report.final_leader = True, leader
                    self.report.convergence = time.monotonic() - healed_at
                    self.event(f"converged: {leader} leads, its peer streams, the specs agree")
                    time.sleep(0.5)  # a few writes on the converged pair
                    return
            time.sleep(0.2)
        self.report.final_roles = self.roles()
        self.event(f"NOT converged within {self.timeout + 30:.0f}s: {self.report.final_roles}")

    # -- observation -------------------------------------------------------------------------------------------
    def until(self, check: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(every)
        raise StepFailed(f"timed out after {timeout:.0f}s waiting for {what}; roles: {self.roles()}")

    def leads(self, site: str, follower: bool) -> bool:
        """`site` leads (Patroni says so and its master endpoint takes writes) and, if `follower`, its peer is a
        standby leader streaming on the same timeline; and rolegen's own view (the API objects, which Patroni
        updates once per loop) already says the same, so the next rolegen run starts from what we saw."""
        role, timeline, _ = patroni_lead(patroni_states(self.ep, site))
        if role != "leader" or not master_writable(self.ep.master_dsn(site)):
            return False
        peer = next(s for s in self.ep.sites if s != site)
        if follower:
            peer_role, peer_timeline, streaming = patroni_lead(patroni_states(self.ep, peer))
            if not (peer_role == "standby-leader" and streaming and peer_timeline == timeline):
                return False
        if self.api_view(site).live_role != "leader":
            return False
        if not follower:
            return True
        standby = self.api_view(peer).leader_member
        return standby is not None and standby.role == "standby-leader" and standby.state == "streaming"

    def declared(self) -> dict[str, str]:
        return {name: spec.role for name, spec in load_workspace(self.ep.env_dir).specs.items()}

    def roles(self) -> dict[str, dict[str, str | None]]:
        declared = self.declared()
        return {s: {"live": patroni_lead(patroni_states(self.ep, s))[0], "declared": declared.get(s)}
                for s in self.ep.sites}

    def api_view(self, site: str) -> SiteState:
        """The site as rolegen reads it (leader lock + Pod annotations), through kubectl."""
        spec = load_workspace(self.ep.env_dir).specs[site]
        cache = Path(self.ep.info["root"]) / "kube-cache"
        # Direct to the API servers: an operator-side API fault must not blind the drill's own observations.
        return read_site(spec, cluster_for(spec, self.ep.observer_kubeconfig, cache_dir=cache))

    def measure(self, acknowledged: list[int], at: list[float], unknown: int, gap: float,
                by: list[str] | None = None) -> None:
        report, expect = self.report, self.scenario.expect
        report.acknowledged, report.unknown, report.longest_gap = len(acknowledged), unknown, gap
        leader = report.final_leader or next(
            (s for s in self.ep.sites if master_writable(self.ep.master_dsn(s))), None)
        if leader is None:
            report.problems.append("no site accepts writes at the end: losses cannot be counted")
            return
        try:
            missing = set(missing_ids(self.ep.master_dsn(leader), acknowledged))
        except Exception as exc:  # psycopg errors: the count is impossible, which the report says
            report.problems.append(f"cannot count losses on {leader}: {exc}")
            return
        window, site = None, None
        if expect.loss_window:
            site = self.mark_sites.get(expect.loss_window[0])
            start, end = (self.marks.get(m) for m in expect.loss_window)
            if start is not None:
                window = (start - SHIP_SLACK, end if end is not None else time.monotonic())
                report.loss_window = (window[0] - self._t0, window[1] - self._t0)
        report.lost, report.lost_in_window = split_losses(acknowledged, at, missing, window, by, site)
        when = dict(zip(acknowledged, at, strict=True))
        report.lost_at = [when[i] - self._t0 for i in report.lost[:20]]


def missing_leaves(config: dict[str, Any], holds: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the leaves of `holds` that `config` lacks or holds with another value."""
    missing = []
    for key, value in holds.items():
        path, here = f"{prefix}{key}", config.get(key) if isinstance(config, dict) else None
        if isinstance(value, dict):
            missing += missing_leaves(here if isinstance(here, dict) else {}, value, path + ".")
        elif here != value:
            missing.append(f"{path} (want {value!r}, found {here!r})")
    return missing


def restore_baseline(control: Control, leader: str | None = None, timeout: float = 60) -> Report:
    """Heal every fault and bring `leader` (None: the site the lab came up leading) back with its peer streaming
    (failback when the specs declare the peer leader): what a drill series does between scenarios. The report
    says whether it worked."""
    steps: tuple[DrillStep, ...] = (Fault("heal_all"), Return(LEADER), Converge(LEADER))
    back = Scenario("baseline", "back to {leader} leading", steps, from_baseline=False, automatic=None)
    try:
        leader = leader or Endpoints(control.request("info")).baseline
        return Drill(control, back, timeout=timeout, leader=leader).run()
    except RolegenError as exc:  # e.g. no site takes writes: the workload cannot even start
        report = Report(back.name, f"back to {leader or 'the baseline'} leading")
        report.reasons = [exc.message]
        return report

"""The drill scenarios, as data: what a game day does (steps) and what must hold afterwards (expectations).

A step is one of: `Write` (let the workload run), `Fault` (a lab operation, see rolegen_lab.control.channel.OPS),
`Rolegen` (one `rolegen` CLI run, possibly SIGKILLed and re-run), `Concurrent` (several runs started at once),
`FollowHint` (the rolegen command the last failed run's hint names), `WaitNoLeader` (until rolegen would read no
live leader on the site: its lock expired, or the member holding it restarted and reports another role),
`Converge` (until a site leads, and its peer streams from it unless `follower=False`), `Return` (`rolegen
failback --to SITE`, unless the specs still declare SITE leader, i.e. no role change happened: what an operator
does to get back to the baseline), `Render` (an operator declaring a role, and editing the spec, by hand) and
`ExpectConfig` (a hand-set key still in a site's DCS config). A rolegen run may carry `Cue`s: a lab operation,
an answer at its prompt or another run, done once its output shows a given line (a runbook step, a prompt).

Scenarios name sites by role, never by name: `LEADER` is the site that leads when the scenario starts, `STANDBY`
its peer (a summary says `{leader}` and `{standby}`; `DrSlot(STANDBY)` is the DR slot the standby streams
through). `resolve` turns a scenario into the lab's site names, once, when a drill runs (`cast`: the site whose
spec declares role leader, and the other), so the same scenarios run on renamed environments or from either site;
the steps the runner executes, and the reports, name real sites.

Every scenario starts from and returns to the baseline (the leader leads, the standby follows). The expectations
encode the fault model's promise: no acknowledged write lost outside the scenario's loss window (the only one is a
site loss, whose unshipped writes asynchronous replication cannot keep), no timeline number selected on both
sites, never two writable primaries, and every rolegen run ending converged or with an error naming the next
command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rolegen.offline.spec import Spec

# The roles a scenario names sites by (`resolve` maps them to the lab's sites when a drill runs).
LEADER = "leader"  # the site that leads when the scenario starts
STANDBY = "standby"  # its peer, a standby cluster streaming from it then
ROLES = (LEADER, STANDBY)
EITHER = "either"  # Converge(EITHER): whichever site leads (a shape the fault model lets end either way)

# How a rolegen run must end:
#   ok          exit 0;
#   error       exit != 0 with a `hint:` line (an error naming the next command);
#   safe        ok or error (the fault model's floor for every run);
#   lease-held  exit != 0 and the message names the lease holder ("held by").
ExpectedEnd = Literal["ok", "error", "safe", "lease-held"]


@dataclass(frozen=True)
class Write:
    seconds: float


@dataclass(frozen=True)
class Fault:
    op: str
    args: dict[str, Any] = field(default_factory=dict)
    mark: str | None = None  # names this moment (loss windows are between two marks)


@dataclass(frozen=True)
class Answer:
    """Typed at a run's prompt (a run with `yes=False` gets a terminal as stdin)."""

    text: str


@dataclass(frozen=True)
class Cue:
    """Done while a rolegen run runs: once its output contains `on_output` (e.g. a runbook step's title, or a
    prompt), else `after` seconds after it started. Each cue fires at most once, in order. `action` is a lab
    operation, an answer at the prompt, or another rolegen run (made while this one waits, e.g. at its prompt)."""

    action: Fault | Answer | Rolegen
    on_output: str | None = None
    after: float | None = None


@dataclass(frozen=True)
class Rolegen:
    verb: Literal["switchover", "failover", "failback", "reseed", "apply"]
    to: str  # --to SITE; for reseed and apply: --env SITE
    expect: ExpectedEnd = "ok"
    kill_after: tuple[float, ...] = ()  # SIGKILL the n-th attempt after this many seconds, then re-run
    timeout: float | None = None  # --timeout (default: the drill's)
    mark: str | None = None  # names the moment the (last) run ended
    during: tuple[Cue, ...] = ()
    yes: bool = True  # False: no --yes, the run asks on a terminal (answer it with a Cue(Answer(...)))
    # "colleague": run from a copy of the environments made at that moment (another operator's clone), so what it
    # records does not change the specs this drill's other runs read
    workspace: Literal["own", "colleague"] = "own"

    def argv(self, timeout: float) -> list[str]:
        target = ["--env", self.to] if self.verb in ("reseed", "apply") else ["--to", self.to]
        return [self.verb, *target, *(["--yes"] if self.yes else []), "--timeout", f"{self.timeout or timeout:g}"]


@dataclass(frozen=True)
class Concurrent:
    runs: tuple[Rolegen, ...]  # started together; each run's own `expect` is ignored: exactly one must win
    expect: Literal["one-wins"] = "one-wins"


@dataclass(frozen=True)
class WaitNoLeader:
    site: str


@dataclass(frozen=True)
class Converge:
    leader: str
    follower: bool = True  # also wait until the peer streams from `leader` (False: the peer is dark)
    mark: str | None = None  # names the moment it held (an automatic failover's promotion, for a loss window)


@dataclass(frozen=True)
class Return:
    to: str


@dataclass(frozen=True)
class FollowHint:
    """If the last rolegen run failed with a hint naming the next rolegen command (or saying to re-run it), run
    that, as a user would, up to `runs` times while each names another; never with options a hint only offers
    for losing data. Each such run must itself end safely."""

    runs: int = 2


@dataclass(frozen=True)
class Render:
    """`rolegen render --env ENV --role ROLE` (an operator declaring a role by hand, before `rolegen apply`)."""

    env: str
    role: Literal["leader", "standby-leader"]
    edit: dict[str, Any] = field(default_factory=dict)  # deep-merged into the spec file first (a hand edit)


@dataclass(frozen=True)
class DrSlot:
    """In `ExpectConfig.holds`: the name of the DR slot `site` streams through while it is the standby (the one its
    peer keeps for it, rolegen.offline.slots.consumed_slot; None without dr_slot)."""

    site: str


@dataclass(frozen=True)
class ExpectConfig:
    """The site's DCS config (its `config` annotation, read directly) holds every leaf of `holds` (None: the key
    is absent): a hand-set key survived, a refused run wrote nothing. A mismatch is reported; the scenario goes
    on."""

    site: str
    holds: dict[str, Any]


DrillStep = (Write | Fault | Rolegen | Concurrent | WaitNoLeader | Converge | Return | FollowHint | Render
             | ExpectConfig)


@dataclass(frozen=True)
class Expect:
    zero_loss: bool = True  # no acknowledged write lost (outside `loss_window`)
    loss_window: tuple[str, str] | None = None  # (mark, mark): losses in between are reported apart, allowed
    final_leader: str = LEADER
    # (mark, mark, seconds): the second mark came within that many seconds of the first (an automatic failover's
    # bound, fault -> promoted)
    within: tuple[str, str, float] | None = None
    max_write_gap: float | None = None  # seconds: no write outage longer (a fault that must cause none)
    no_promotion_on: str | None = None  # a role: no member of that site selected a new timeline (no failover)


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    steps: tuple[DrillStep, ...]
    expect: Expect = Expect()
    from_baseline: bool = True  # refuse to start unless LEADER leads with its peer streaming
    # True: runs on a lab with automatic failover (`lab up --automatic`) only; False: only without; None: either
    automatic: bool | None = False
    replication: str | None = None  # with automatic: the witness replication the lab must run (`lab up --sync`)


@dataclass(frozen=True)
class Cast:
    """Which of the lab's sites plays each role of a scenario: `leader` leads when it starts, `standby` is its peer;
    `slots`: the DR slot each site streams through as the standby (None without dr_slot)."""

    leader: str
    standby: str
    slots: Mapping[str, str | None] = field(default_factory=dict)

    def site(self, role: str) -> str:
        if role == LEADER:
            return self.leader
        if role == STANDBY:
            return self.standby
        raise ValueError(f"a drill scenario names sites by role ({', '.join(ROLES)}), not {role!r}")

    def text(self, template: str) -> str:
        """A summary or an output line with `{leader}` and `{standby}` replaced by the sites' names."""
        return template.format(leader=self.leader, standby=self.standby)


def cast_of(specs: Mapping[str, Spec], leader: str | None = None) -> Cast:
    """The cast of a drill on the pair `specs`: `leader` (None: the site whose spec declares role leader) and the
    other site."""
    from rolegen.errors import RolegenError
    from rolegen.offline.slots import consumed_slot

    if leader is None:
        declared = sorted(name for name, spec in specs.items() if spec.role == "leader")
        if len(declared) != 1:
            roles = ", ".join(f"{name} {spec.role}" for name, spec in sorted(specs.items()))
            raise RolegenError(f"a drill starts from the site the specs declare leader; they declare {roles}",
                               hint="record the live roles (rolegen render --env ENV --role ROLE) or restore the "
                               "baseline (rolegen failback --to SITE), then run the drill again")
        [leader] = declared
    others = sorted(set(specs) - {leader})
    if leader not in specs or len(others) != 1:
        raise RolegenError(f"a drill runs on a pair of sites, one of them {leader}; the specs name "
                           f"{', '.join(sorted(specs)) or 'none'}")
    return Cast(leader, others[0], {name: consumed_slot(spec) for name, spec in specs.items()})


def resolve(scenario: Scenario, sites: Cast) -> Scenario:
    """`scenario` in the lab's site names: every role it names (a step's site, a run's target, a fault's `site`,
    `DrSlot`, the final leader, `{leader}`/`{standby}` in its summary and in cues' output lines) replaced by the
    site `sites` casts in it. The one place roles become sites: the runner executes, and reports, what this
    returns."""
    return replace(scenario, summary=sites.text(scenario.summary),
                   steps=tuple(_resolve_step(step, sites) for step in scenario.steps),
                   expect=replace(scenario.expect, final_leader=sites.site(scenario.expect.final_leader),
                                  no_promotion_on=sites.site(scenario.expect.no_promotion_on)
                                  if scenario.expect.no_promotion_on else None))


def _resolve_step(step: DrillStep, sites: Cast) -> DrillStep:
    if isinstance(step, Fault):
        return _resolve_fault(step, sites)
    if isinstance(step, Rolegen):
        return _resolve_run(step, sites)
    if isinstance(step, Concurrent):
        return replace(step, runs=tuple(_resolve_run(run, sites) for run in step.runs))
    if isinstance(step, WaitNoLeader):
        return replace(step, site=sites.site(step.site))
    if isinstance(step, Converge):
        return step if step.leader == EITHER else replace(step, leader=sites.site(step.leader))
    if isinstance(step, Return):
        return replace(step, to=sites.site(step.to))
    if isinstance(step, Render):
        return replace(step, env=sites.site(step.env))
    if isinstance(step, ExpectConfig):
        return replace(step, site=sites.site(step.site), holds=_resolve_holds(step.holds, sites))
    return step  # Write, FollowHint: no site


def _resolve_fault(fault: Fault, sites: Cast) -> Fault:
    if fault.args.get("site") is None:  # the whole lab (heal_all, wan, a cut both ways, ...)
        return fault
    return replace(fault, args={**fault.args, "site": sites.site(fault.args["site"])})


def _resolve_run(run: Rolegen, sites: Cast) -> Rolegen:
    cues = []
    for cue in run.during:
        action = cue.action
        if isinstance(action, Fault):
            action = _resolve_fault(action, sites)
        elif isinstance(action, Rolegen):
            action = _resolve_run(action, sites)
        on_output = None if cue.on_output is None else sites.text(cue.on_output)
        cues.append(replace(cue, action=action, on_output=on_output))
    return replace(run, to=sites.site(run.to), during=tuple(cues))


def _resolve_holds(holds: dict[str, Any], sites: Cast) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in holds.items():
        if isinstance(value, dict):
            value = _resolve_holds(value, sites)
        elif isinstance(value, DrSlot):
            value = sites.slots.get(sites.site(value.site))
        resolved[key] = value
    return resolved


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("switchover", "planned switchover there and back under load", (
        Write(1.5), Rolegen("switchover", STANDBY), Converge(STANDBY),
        Write(1.0), Rolegen("switchover", LEADER), Converge(LEADER), Write(0.5))),
    Scenario("crash-restart-failover",
             "{leader}'s members SIGKILLed and restarted at once (a kubelet); failover to {standby}; failback to "
             "{leader}", (
        Write(1.5), Fault("kill", {"site": LEADER}, mark="fault"), WaitNoLeader(LEADER),
        Rolegen("failover", STANDBY, expect="safe"), FollowHint(),
        Write(1.0), Return(LEADER), Converge(LEADER), Write(0.5))),
    Scenario("site-loss-failover",
             "{leader} dark (members down, API down, tunnel cut); failover; {leader}'s API returns; failover re-run "
             "fences; members return; failback", (
        Write(1.5), Fault("lose", {"site": LEADER}, mark="fault"),
        Rolegen("failover", STANDBY, mark="promoted"), Converge(STANDBY, follower=False), Write(1.0),
        Fault("restore", {"site": LEADER, "api_only": True}), Rolegen("failover", STANDBY),
        Fault("restore", {"site": LEADER}), Converge(STANDBY), Write(1.0),
        Rolegen("failback", LEADER), Converge(LEADER), Write(0.5)),
        Expect(loss_window=("fault", "promoted"))),
    Scenario("tunnel-cut",
             "tunnel cut both ways with both APIs up while writing; a switchover during the cut must refuse or roll "
             "back; heal; switchover there and back", (
        Write(1.0), Fault("cut", mark="cut"), Write(1.0),
        Rolegen("switchover", STANDBY, expect="error", timeout=15), Write(0.5),
        Fault("heal", mark="healed"), Converge(LEADER),
        Rolegen("switchover", STANDBY), Converge(STANDBY), Rolegen("switchover", LEADER), Converge(LEADER),
        Write(0.5))),
    # Patroni is paused on every member of the leader site, not only on its leading member: a lone hung leader is
    # replaced inside its site by its replica once the lock expires (Patroni without a watchdog), leaving two
    # writable primaries there that no cross-site procedure can prevent; this scenario is about what rolegen does
    # next to a hung site.
    Scenario("hung-patroni",
             "Patroni SIGSTOPped on every {leader} member ({leader}'s PostgreSQL primary keeps running); once "
             "{leader}'s leader lock expired, failover to {standby} must refuse while {leader} may still take "
             "writes; resume; the failover re-run as its hint says; back to {leader}", (
        Write(1.0), Fault("pause", {"site": LEADER}, mark="fault"), WaitNoLeader(LEADER),
        Rolegen("failover", STANDBY, expect="error", timeout=10), Write(0.5),
        Fault("resume", {"site": LEADER}, mark="resumed"), FollowHint(),
        Return(LEADER), Converge(LEADER), Write(0.5))),
    # A clean shutdown is the switchover's early proof only while Patroni says `stopping` (a demotion): a restart
    # also shuts PostgreSQL down cleanly, then starts it again as the primary it was.
    Scenario("restart-at-demotion",
             "switchover --to {standby} while {leader}'s leader is restarted by its Patroni (patronictl restart) as "
             "the demotion is written: a clean shutdown that comes back a primary must not let the gate pass early; "
             "and back", (
        Write(1.5), Rolegen("switchover", STANDBY, expect="safe", during=(
            Cue(Fault("restart_postgres", {"site": LEADER}), on_output="Demote {leader}"),)),
        FollowHint(), Converge(STANDBY), Write(1.0), Rolegen("switchover", LEADER), Converge(LEADER), Write(0.5))),
    Scenario("killed-rolegen", "switchover SIGKILLed at 0.7, 1.5 and 2.5 s, re-run until it converges; and back", (
        Write(1.0), Rolegen("switchover", STANDBY, kill_after=(0.7, 1.5, 2.5)), Converge(STANDBY),
        Write(0.5), Rolegen("switchover", LEADER, kill_after=(1.0,)), Converge(LEADER), Write(0.5))),
    # -- the operator's partial view, a returning site, what an operator does by hand (issue #21, item 7) --------
    Scenario("operator-partition",
             "only the operator's route to {leader}'s API is down (refused, then slow past kubectl's timeout), "
             "{leader} healthy, tunnel up, {standby} streaming from {leader}: failover --to {standby} must refuse "
             "each time; nothing is promoted", (
        Write(1.5), Fault("api_cut", {"site": LEADER}, mark="cut"),
        Rolegen("failover", STANDBY, expect="error", timeout=20), Write(1.0),
        Fault("api_slow", {"site": LEADER}), Rolegen("failover", STANDBY, expect="error", timeout=20),
        Write(0.5), Fault("api_heal", mark="healed"), Converge(LEADER), Write(0.5))),
    Scenario("flaky-api",
             "the operator's API connections fail at random (rate 0.3: resets, HTTP 503) from the first runbook "
             "step of a failover ({leader} lost: catch-up), a failback (from its rewind) and a reseed: each run "
             "completes or stops naming the next command; never a promotion or a wipe on an unclassified error", (
        Write(1.5), Fault("lose", {"site": LEADER}, mark="fault"),
        Rolegen("failover", STANDBY, expect="safe", mark="promoted", during=(
            Cue(Fault("api_flaky", {"site": STANDBY, "rate": 0.3}), on_output="Preflight"),)),
        Fault("api_heal"), FollowHint(), Converge(STANDBY, follower=False),
        Write(1.0), Fault("restore", {"site": LEADER, "api_only": True}), Rolegen("failover", STANDBY),
        Fault("restore", {"site": LEADER}), Converge(STANDBY), Write(1.0),
        Rolegen("failback", LEADER, expect="safe", during=(
            Cue(Fault("api_flaky", {"site": LEADER, "rate": 0.3}), on_output="Rewind"),
            Cue(Fault("api_flaky", {"site": STANDBY, "rate": 0.3}), on_output="Rewind"))),
        Fault("api_heal"), FollowHint(), Return(LEADER), Converge(LEADER), Write(1.0),
        Rolegen("reseed", STANDBY, expect="safe", during=(
            Cue(Fault("api_flaky", {"site": LEADER, "rate": 0.3}), on_output="Preflight"),
            Cue(Fault("api_flaky", {"site": STANDBY, "rate": 0.3}), on_output="Preflight"))),
        Fault("api_heal"), FollowHint(), Converge(LEADER), Write(0.5)),
        Expect(loss_window=("fault", "promoted"))),
    Scenario("returning-site",
             "{leader} lost; failover to {standby}; {leader}'s members cold-start while the tunnel stays cut for "
             "12 s (the site hosting the tunnel back before it): {leader} must not start as a second primary; "
             "fence, failback", (
        Write(1.5), Fault("lose", {"site": LEADER}, mark="fault"),
        Rolegen("failover", STANDBY, mark="promoted"), Converge(STANDBY, follower=False), Write(1.0),
        Fault("restore", {"site": LEADER, "tunnel_after": 12}, mark="returned"), Write(17.0),
        Rolegen("failover", STANDBY, expect="safe"), FollowHint(), Converge(STANDBY), Write(1.0),
        Return(LEADER), Converge(LEADER), Write(0.5)),
        Expect(loss_window=("fault", "promoted"))),
    Scenario("paused-patroni",
             "{leader}'s Patroni in maintenance mode (`patronictl pause`: pause: true in its DCS config); "
             "switchover --to {standby} must refuse before writing anything; resume; {leader} still leads, "
             "{standby} streams", (
        Write(1.0), Fault("maintenance", {"site": LEADER}, mark="paused"),
        Rolegen("switchover", STANDBY, expect="error", timeout=20),
        # Refused before any write: the leader's DCS config still leads, the standby still streams through its slot.
        ExpectConfig(LEADER, {"standby_cluster": None}),
        ExpectConfig(STANDBY, {"standby_cluster": {"primary_slot_name": DrSlot(STANDBY)}}), Write(0.5),
        Fault("maintenance", {"site": LEADER, "on": False}, mark="resumed"), Converge(LEADER), Write(0.5))),
    # 300 ms of WAN latency on the tunnel, so the old leader still holds WAL its peer has not received when its
    # Pod goes: once while the switchover waits for the LSN gate, once as the demotion is written (before the
    # demoted leader can publish its final position).
    Scenario("recreated-pod",
             "tunnel with 300 ms latency; switchover --to {standby} with {leader}'s old leader Pod force-deleted "
             "(recreated by its StatefulSet, restartCount 0) during the LSN gate; switchover back with "
             "{standby}'s leader Pod force-deleted as it is demoted: no acknowledged write lost", (
        # New WAN settings drop the tunnel's connections once: wait until the standby streams again (else the
        # switchover's preflight refuses and nothing is exercised).
        Fault("wan", {"latency_ms": 300}), Converge(LEADER), Write(1.5),
        Rolegen("switchover", STANDBY, expect="safe", during=(
            Cue(Fault("delete_pod", {"site": LEADER, "member": "leader"}), on_output="Wait for the LSN gate"),)),
        FollowHint(), Converge(STANDBY), Write(1.5),
        Rolegen("switchover", LEADER, expect="safe", during=(
            # the runbook step's title names the site being demoted: resolved with the scenario
            Cue(Fault("delete_pod", {"site": STANDBY, "member": "leader"}), on_output="Demote {standby}"),)),
        FollowHint(), Fault("wan"), Return(LEADER), Converge(LEADER), Write(0.5))),
    Scenario("apply-race",
             "apply with a hand-set key in {leader}'s DCS config and a spec change that makes Helm run: the key "
             "survives; then the apply runbook of a role change (demote {leader} by apply, declare {standby} "
             "leader) whose prompt is answered only after a colleague (own clone) ran failover --to {leader}: "
             "{standby} must not become a second primary; the specs then take the colleague's roles", (
        Write(1.0),
        Fault("edit_config", {"site": LEADER, "patch": {"postgresql": {"parameters": {"work_mem": "7MB"}}}}),
        Fault("edit_config", {"site": LEADER, "patch": {"failsafe_mode": True}}),
        Render(LEADER, "leader", {"tsc": {"monitor": {"interval": 11}}}),  # values change: Helm runs
        Rolegen("apply", LEADER),
        ExpectConfig(LEADER, {"postgresql": {"parameters": {"work_mem": "7MB"}}, "failsafe_mode": True}),
        Render(LEADER, "standby-leader"), Rolegen("apply", LEADER, expect="safe"),
        Render(STANDBY, "leader"),
        Rolegen("apply", STANDBY, expect="safe", yes=False, during=(
            Cue(Rolegen("failover", LEADER, expect="safe", workspace="colleague"),
                on_output="Apply these changes"),
            Cue(Answer("y"), on_output="Apply these changes"))),
        Write(2.0), Render(STANDBY, "standby-leader"), Render(LEADER, "leader"),  # take the colleague's roles
        Return(LEADER), Converge(LEADER),
        # the spec edit undone and applied, so the next run's edit makes Helm run again
        Render(LEADER, "leader", {"tsc": {"monitor": {"interval": 10}}}), Rolegen("apply", LEADER),
        Converge(LEADER), Write(0.5))),
    Scenario("concurrent-rolegen",
             "two switchovers to {standby} at once: one fails naming the lease holder, the other completes; and "
             "back", (
        Write(1.0), Concurrent((Rolegen("switchover", STANDBY), Rolegen("switchover", STANDBY))),
        Converge(STANDBY), Write(0.5), Rolegen("switchover", LEADER), Converge(LEADER), Write(0.5))),
)}

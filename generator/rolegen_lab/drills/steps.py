"""What a drill scenario is made of, as data: its steps (what a game day does), its expectations (what must hold
afterwards), and how the roles it names become the lab's sites.

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

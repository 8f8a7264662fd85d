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

Every scenario starts from and returns to the baseline (gold leads, golddr follows). The expectations encode the
fault model's promise: no acknowledged write lost outside the scenario's loss window (the only one is a site loss,
whose unshipped writes asynchronous replication cannot keep), no timeline number selected on both sites, never
two writable primaries, and every rolegen run ending converged or with an error naming the next command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
    final_leader: str = "gold"


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    steps: tuple[DrillStep, ...]
    expect: Expect = Expect()
    from_baseline: bool = True  # refuse to start unless BASELINE leads with its peer streaming


BASELINE = "gold"  # the bundled environments' leader: every scenario starts and ends with it leading


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("switchover", "planned switchover there and back under load", (
        Write(1.5), Rolegen("switchover", "golddr"), Converge("golddr"),
        Write(1.0), Rolegen("switchover", "gold"), Converge("gold"), Write(0.5))),
    Scenario("crash-restart-failover",
             "gold's members SIGKILLed and restarted at once (a kubelet); failover to golddr; failback to gold", (
        Write(1.5), Fault("kill", {"site": "gold"}, mark="fault"), WaitNoLeader("gold"),
        Rolegen("failover", "golddr", expect="safe"), FollowHint(),
        Write(1.0), Return("gold"), Converge("gold"), Write(0.5))),
    Scenario("site-loss-failover",
             "gold dark (members down, API down, tunnel cut); failover; gold's API returns; failover re-run fences; "
             "members return; failback", (
        Write(1.5), Fault("lose", {"site": "gold"}, mark="fault"),
        Rolegen("failover", "golddr", mark="promoted"), Converge("golddr", follower=False), Write(1.0),
        Fault("restore", {"site": "gold", "api_only": True}), Rolegen("failover", "golddr"),
        Fault("restore", {"site": "gold"}), Converge("golddr"), Write(1.0),
        Rolegen("failback", "gold"), Converge("gold"), Write(0.5)),
        Expect(loss_window=("fault", "promoted"))),
    Scenario("tunnel-cut",
             "tunnel cut both ways with both APIs up while writing; a switchover during the cut must refuse or roll "
             "back; heal; switchover there and back", (
        Write(1.0), Fault("cut", mark="cut"), Write(1.0),
        Rolegen("switchover", "golddr", expect="error", timeout=15), Write(0.5),
        Fault("heal", mark="healed"), Converge("gold"),
        Rolegen("switchover", "golddr"), Converge("golddr"), Rolegen("switchover", "gold"), Converge("gold"),
        Write(0.5))),
    # Every gold member's Patroni is paused, not only the leader's: a lone hung leader is replaced inside gold by
    # its replica once the lock expires (Patroni without a watchdog), leaving two writable primaries in gold that
    # no cross-site procedure can prevent; this scenario is about what rolegen does next to a hung site.
    Scenario("hung-patroni",
             "Patroni SIGSTOPped on every gold member (gold's PostgreSQL primary keeps running); once gold's "
             "leader lock expired, failover to golddr must refuse while gold may still take writes; resume; the "
             "failover re-run as its hint says; back to gold", (
        Write(1.0), Fault("pause", {"site": "gold"}, mark="fault"), WaitNoLeader("gold"),
        Rolegen("failover", "golddr", expect="error", timeout=10), Write(0.5),
        Fault("resume", {"site": "gold"}, mark="resumed"), FollowHint(),
        Return("gold"), Converge("gold"), Write(0.5))),
    Scenario("killed-rolegen", "switchover SIGKILLed at 0.7, 1.5 and 2.5 s, re-run until it converges; and back", (
        Write(1.0), Rolegen("switchover", "golddr", kill_after=(0.7, 1.5, 2.5)), Converge("golddr"),
        Write(0.5), Rolegen("switchover", "gold", kill_after=(1.0,)), Converge("gold"), Write(0.5))),
    # -- the operator's partial view, a returning site, what an operator does by hand (issue #21, item 7) --------
    Scenario("operator-partition",
             "only the operator's route to gold's API is down (refused, then slow past kubectl's timeout), gold "
             "healthy, tunnel up, golddr streaming from gold: failover --to golddr must refuse each time; nothing "
             "is promoted", (
        Write(1.5), Fault("api_cut", {"site": "gold"}, mark="cut"),
        Rolegen("failover", "golddr", expect="error", timeout=20), Write(1.0),
        Fault("api_slow", {"site": "gold"}), Rolegen("failover", "golddr", expect="error", timeout=20),
        Write(0.5), Fault("api_heal", mark="healed"), Converge("gold"), Write(0.5))),
    Scenario("flaky-api",
             "the operator's API connections fail at random (rate 0.3: resets, HTTP 503) from the first runbook "
             "step of a failover (gold lost: catch-up), a failback (from its rewind) and a reseed: each run "
             "completes or stops naming the next command; never a promotion or a wipe on an unclassified error", (
        Write(1.5), Fault("lose", {"site": "gold"}, mark="fault"),
        Rolegen("failover", "golddr", expect="safe", mark="promoted", during=(
            Cue(Fault("api_flaky", {"site": "golddr", "rate": 0.3}), on_output="Preflight"),)),
        Fault("api_heal"), FollowHint(), Converge("golddr", follower=False),
        Write(1.0), Fault("restore", {"site": "gold", "api_only": True}), Rolegen("failover", "golddr"),
        Fault("restore", {"site": "gold"}), Converge("golddr"), Write(1.0),
        Rolegen("failback", "gold", expect="safe", during=(
            Cue(Fault("api_flaky", {"site": "gold", "rate": 0.3}), on_output="Rewind"),
            Cue(Fault("api_flaky", {"site": "golddr", "rate": 0.3}), on_output="Rewind"))),
        Fault("api_heal"), FollowHint(), Return("gold"), Converge("gold"), Write(1.0),
        Rolegen("reseed", "golddr", expect="safe", during=(
            Cue(Fault("api_flaky", {"site": "gold", "rate": 0.3}), on_output="Preflight"),
            Cue(Fault("api_flaky", {"site": "golddr", "rate": 0.3}), on_output="Preflight"))),
        Fault("api_heal"), FollowHint(), Converge("gold"), Write(0.5)),
        Expect(loss_window=("fault", "promoted"))),
    Scenario("returning-site",
             "gold lost; failover to golddr; gold's members cold-start while the tunnel stays cut for 12 s (the "
             "site hosting the tunnel back before it): gold must not start as a second primary; fence, failback", (
        Write(1.5), Fault("lose", {"site": "gold"}, mark="fault"),
        Rolegen("failover", "golddr", mark="promoted"), Converge("golddr", follower=False), Write(1.0),
        Fault("restore", {"site": "gold", "tunnel_after": 12}, mark="returned"), Write(17.0),
        Rolegen("failover", "golddr", expect="safe"), FollowHint(), Converge("golddr"), Write(1.0),
        Return("gold"), Converge("gold"), Write(0.5)),
        Expect(loss_window=("fault", "promoted"))),
    Scenario("paused-patroni",
             "gold's Patroni in maintenance mode (`patronictl pause`: pause: true in its DCS config); switchover "
             "--to golddr must refuse before writing anything; resume; gold still leads, golddr streams", (
        Write(1.0), Fault("maintenance", {"site": "gold"}, mark="paused"),
        Rolegen("switchover", "golddr", expect="error", timeout=20),
        # Refused before any write: gold's DCS config still leads, golddr still streams through its slot.
        ExpectConfig("gold", {"standby_cluster": None}),
        ExpectConfig("golddr", {"standby_cluster": {"primary_slot_name": "golddr"}}), Write(0.5),
        Fault("maintenance", {"site": "gold", "on": False}, mark="resumed"), Converge("gold"), Write(0.5))),
    # 300 ms of WAN latency on the tunnel, so the old leader still holds WAL its peer has not received when its
    # Pod goes: once while the switchover waits for the LSN gate, once as the demotion is written (before the
    # demoted leader can publish its final position).
    Scenario("recreated-pod",
             "tunnel with 300 ms latency; switchover --to golddr with gold's old leader Pod force-deleted "
             "(recreated by its StatefulSet, restartCount 0) during the LSN gate; switchover back with golddr's "
             "leader Pod force-deleted as it is demoted: no acknowledged write lost", (
        # New WAN settings drop the tunnel's connections once: wait until golddr streams again (else the
        # switchover's preflight refuses and nothing is exercised).
        Fault("wan", {"latency_ms": 300}), Converge("gold"), Write(1.5),
        Rolegen("switchover", "golddr", expect="safe", during=(
            Cue(Fault("delete_pod", {"site": "gold", "member": "leader"}), on_output="Wait for the LSN gate"),)),
        FollowHint(), Converge("golddr"), Write(1.5),
        Rolegen("switchover", "gold", expect="safe", during=(
            Cue(Fault("delete_pod", {"site": "golddr", "member": "leader"}), on_output="Demote golddr"),)),
        FollowHint(), Fault("wan"), Return("gold"), Converge("gold"), Write(0.5))),
    Scenario("apply-race",
             "apply with a hand-set key in gold's DCS config and a spec change that makes Helm run: the key "
             "survives; then the apply runbook of a role change (demote gold by apply, declare golddr leader) "
             "whose prompt is answered only after a colleague (own clone) ran failover --to gold: golddr must not "
             "become a second primary; the specs then take the colleague's roles", (
        Write(1.0),
        Fault("edit_config", {"site": "gold", "patch": {"postgresql": {"parameters": {"work_mem": "7MB"}}}}),
        Fault("edit_config", {"site": "gold", "patch": {"failsafe_mode": True}}),
        Render("gold", "leader", {"tsc": {"monitor": {"interval": 11}}}),  # values change: Helm runs
        Rolegen("apply", "gold"),
        ExpectConfig("gold", {"postgresql": {"parameters": {"work_mem": "7MB"}}, "failsafe_mode": True}),
        Render("gold", "standby-leader"), Rolegen("apply", "gold", expect="safe"),
        Render("golddr", "leader"),
        Rolegen("apply", "golddr", expect="safe", yes=False, during=(
            Cue(Rolegen("failover", "gold", expect="safe", workspace="colleague"), on_output="Apply these changes"),
            Cue(Answer("y"), on_output="Apply these changes"))),
        Write(2.0), Render("golddr", "standby-leader"), Render("gold", "leader"),  # take the colleague's roles
        Return("gold"), Converge("gold"),
        # the spec edit undone and applied, so the next run's edit makes Helm run again
        Render("gold", "leader", {"tsc": {"monitor": {"interval": 10}}}), Rolegen("apply", "gold"),
        Converge("gold"), Write(0.5))),
    Scenario("concurrent-rolegen",
             "two switchovers to golddr at once: one fails naming the lease holder, the other completes; and back", (
        Write(1.0), Concurrent((Rolegen("switchover", "golddr"), Rolegen("switchover", "golddr"))),
        Converge("golddr"), Write(0.5), Rolegen("switchover", "gold"), Converge("gold"), Write(0.5))),
)}


def scenario(name: str) -> Scenario:
    from rolegen.errors import UsageError

    if name not in SCENARIOS:
        raise UsageError(f"unknown drill scenario {name!r}", hint=f"scenarios: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]

"""The drill scenarios, as data: what a game day does (steps) and what must hold afterwards (expectations).

A step is one of: `Write` (let the workload run), `Fault` (a lab operation, see rolegen.lab.control.OPS),
`Rolegen` (one `rolegen` CLI run, possibly SIGKILLed and re-run), `Concurrent` (several runs started at once),
`FollowHint` (the rolegen command the last failed run's hint names), `WaitNoLeader` (until rolegen would read no
live leader on the site: its lock expired, or the member holding it restarted and reports another role),
`Converge` (until a site leads, and its peer streams from it unless `follower=False`) and `Return` (`rolegen
failback --to SITE`, unless the specs still declare SITE leader, i.e. no role change happened: what an operator
does to get back to the baseline).

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
Outcome = Literal["ok", "error", "safe", "lease-held"]


@dataclass(frozen=True)
class Write:
    seconds: float


@dataclass(frozen=True)
class Fault:
    op: str
    args: dict[str, Any] = field(default_factory=dict)
    mark: str | None = None  # names this moment (loss windows are between two marks)


@dataclass(frozen=True)
class Rolegen:
    verb: Literal["switchover", "failover", "failback"]
    to: str
    expect: Outcome = "ok"
    kill_after: tuple[float, ...] = ()  # SIGKILL the n-th attempt after this many seconds, then re-run
    timeout: float | None = None  # --timeout (default: the drill's)
    mark: str | None = None  # names the moment the (last) run ended

    def argv(self, timeout: float) -> list[str]:
        return [self.verb, "--to", self.to, "--yes", "--timeout", f"{self.timeout or timeout:g}"]


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


Step = Write | Fault | Rolegen | Concurrent | WaitNoLeader | Converge | Return | FollowHint


@dataclass(frozen=True)
class Expect:
    zero_loss: bool = True  # no acknowledged write lost (outside `loss_window`)
    loss_window: tuple[str, str] | None = None  # (mark, mark): losses in between are reported apart, allowed
    final_leader: str = "gold"


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    steps: tuple[Step, ...]
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

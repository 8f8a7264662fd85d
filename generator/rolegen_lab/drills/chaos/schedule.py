"""Chaos schedules: a seed gives a list of timed operations (`Op`: an offset in seconds and an entry of `OPS`
with its arguments), drawn by `random.Random(seed)` and nothing else, so the seed alone reproduces a schedule.
A schedule saves to and loads from a replay file (JSON, or YAML by the file's suffix) with the same operations at
the same offsets. Pure: no lab, no clock.

`OPS` is the one table of what a schedule may do. An entry names how the runner executes it (`lab`: a request on
the lab's control channel, `OPS[...].lab_op`; `rolegen`: one CLI run; `twice`: two runs at once; `killed`: a run
SIGKILLed and re-run; `hint`: the command the last refusal named) and draws its arguments. A new lab fault (an
operator-side API cut, WAN settings on the tunnel) is one entry: entries whose `lab_op` the running lab does not
know are left out of the draw, so the same seed gives the same schedule on the same lab.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rolegen.errors import UsageError

Runs = Literal["lab", "rolegen", "twice", "killed", "hint", "status"]
FORMAT = "rolegen-chaos/1"


@dataclass
class World:
    """What the generator believes it has done so far (not the lab's state): keeps schedules coherent (restore only
    a lost site, resume only a paused one) without reading anything."""

    sites: tuple[str, ...]
    ttl: float
    lost: set[str] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    held: set[str] = field(default_factory=set)
    cut: set[str] = field(default_factory=set)  # "" = both directions
    api: set[str] = field(default_factory=set)  # sites whose API the operator reaches badly (cut, slow, flaky)
    maintenance: set[str] = field(default_factory=set)  # sites in Patroni maintenance mode (`pause: true`)


Draw = Callable[[random.Random, World], dict[str, Any] | None]  # None: not applicable now


@dataclass(frozen=True)
class OpKind:
    name: str
    runs: Runs
    weight: float
    draw: Draw
    lab_op: str | None = None  # the control-channel op (runs == "lab")
    effect: Callable[[World, dict[str, Any]], None] = lambda _w, _a: None


def _site(r: random.Random, w: World) -> str:
    return r.choice(sorted(set(w.sites) - w.lost) or sorted(w.sites))


def _kill(restart: bool) -> Draw:
    def draw(r: random.Random, w: World) -> dict[str, Any] | None:
        up = sorted(set(w.sites) - w.lost - w.held)
        if not up:
            return None
        member = r.choice([None, "leader", "0", "1"])  # None: the whole site
        return {"site": r.choice(up), "member": member, "restart": restart}
    return draw


def _one_of(pool: Callable[[World], Collection[str]], key: str = "site") -> Draw:
    def draw(r: random.Random, w: World) -> dict[str, Any] | None:
        chosen = sorted(pool(w))
        return {key: r.choice(chosen)} if chosen else None
    return draw


def _lose(r: random.Random, w: World) -> dict[str, Any] | None:
    # One site lost at a time: with both gone nothing is left to fail over to, or to count writes on.
    return None if w.lost else {"site": r.choice(sorted(w.sites))}


def _restore(r: random.Random, w: World) -> dict[str, Any] | None:
    if not w.lost:
        return None
    api_only = r.random() < 0.3
    # A returning site whose tunnel comes up after its members (the site that hosts it cold-starts first).
    late = 0 if api_only else r.choice([0, 0, 10, 30])
    return {"site": r.choice(sorted(w.lost)), "api_only": api_only, **({"tunnel_after": late} if late else {})}


def _api(mode: str) -> Draw:
    """The operator's route to one site's API goes bad while the site itself sees nothing (VPN, load balancer)."""
    def draw(r: random.Random, w: World) -> dict[str, Any] | None:
        chosen = sorted(set(w.sites) - w.api)
        if not chosen:
            return None
        args: dict[str, Any] = {"site": r.choice(chosen)}
        if mode == "flaky":
            args["rate"] = r.choice([0.2, 0.5])
        return args
    return draw


def _wan(r: random.Random, _w: World) -> dict[str, Any] | None:
    """The tunnel behaves like a link between two data centres (or loopback again: all zero)."""
    latency = r.choice([0, 5, 20, 50])
    return {"latency_ms": latency, "jitter_ms": r.choice([0, latency / 4]), "rate_mbit": r.choice([0, 50, 200]),
            "reset_every_s": r.choice([0, 0, 0, 20])}


def _delete_pod(r: random.Random, w: World) -> dict[str, Any] | None:
    up = sorted(set(w.sites) - w.lost - w.held)
    return {"site": r.choice(up), "member": r.choice(["leader", "0", "1"])} if up else None


def _cut(r: random.Random, w: World) -> dict[str, Any] | None:
    return {"site": r.choice([None, *sorted(w.sites)])}  # None: both directions; a site: only towards it


def _verb(verb: str, option: str = "--to", extra: tuple[str, ...] = ()) -> Draw:
    def draw(r: random.Random, w: World) -> dict[str, Any] | None:
        return {"argv": [verb, option, r.choice(sorted(w.sites)), *extra]}
    return draw


ROLE_CHANGES = (_verb("switchover"), _verb("failover"), _verb("failback"))


def _killed(r: random.Random, w: World) -> dict[str, Any] | None:
    argv = r.choice(ROLE_CHANGES)(r, w)
    assert argv is not None
    return {**argv, "kill_after": round(r.uniform(0.3, 4.0), 2)}


def _twice(r: random.Random, w: World) -> dict[str, Any] | None:
    first, second = (r.choice(ROLE_CHANGES)(r, w) for _ in range(2))
    assert first is not None and second is not None
    return {"argvs": [first["argv"], second["argv"]]}


def _set(attr: str, key: str = "site", add: bool = True) -> Callable[[World, dict[str, Any]], None]:
    def effect(w: World, args: dict[str, Any]) -> None:
        target: set[str] = getattr(w, attr)
        value = args.get(key) or ""
        if add:
            target.add(value)
        else:
            target.discard(value)
    return effect


def _restored(w: World, args: dict[str, Any]) -> None:
    if not args.get("api_only"):
        w.lost.discard(args["site"])


def _killed_held(w: World, args: dict[str, Any]) -> None:
    if args.get("member") is None:
        w.held.add(args["site"])


def _healed(w: World, _args: dict[str, Any]) -> None:
    w.cut.clear()


OPS: dict[str, OpKind] = {k.name: k for k in (
    # lab faults (the platform's)
    OpKind("kill", "lab", 3, _kill(True), "kill"),
    OpKind("kill-hold", "lab", 1.5, _kill(False), "kill", _killed_held),
    OpKind("start", "lab", 1.5, _one_of(lambda w: w.held), "start", _set("held", add=False)),
    # A whole site is paused, never a lone member: a lone hung leader is replaced inside its site by its replica
    # once its lock expires (Patroni without a watchdog), two primaries no cross-site tool can prevent.
    OpKind("pause", "lab", 1, _one_of(lambda w: set(w.sites) - w.lost - w.paused), "pause", _set("paused")),
    OpKind("resume", "lab", 2, _one_of(lambda w: w.paused), "resume", _set("paused", add=False)),
    OpKind("cut", "lab", 1.5, _cut, "cut", _set("cut")),
    OpKind("heal", "lab", 2, lambda _r, w: {"site": None} if w.cut else None, "heal", _healed),
    OpKind("lose", "lab", 0.7, _lose, "lose", _set("lost")),
    OpKind("restore", "lab", 2, _restore, "restore", _restored),
    # the operator's view of the sites, and the link's character
    OpKind("api-cut", "lab", 1, _api("cut"), "api_cut", _set("api")),
    OpKind("api-slow", "lab", 0.7, _api("slow"), "api_slow", _set("api")),
    OpKind("api-flaky", "lab", 1, _api("flaky"), "api_flaky", _set("api")),
    OpKind("api-heal", "lab", 1.5, lambda _r, w: {"site": None} if w.api else None, "api_heal",
           lambda w, _a: w.api.clear()),
    OpKind("maintenance", "lab", 0.6, _one_of(lambda w: set(w.sites) - w.lost - w.maintenance), "maintenance",
           _set("maintenance")),
    OpKind("maintenance-off", "lab", 1.2,
           lambda r, w: {"site": r.choice(sorted(w.maintenance)), "on": False} if w.maintenance else None,
           "maintenance", _set("maintenance", add=False)),
    OpKind("delete-pod", "lab", 0.8, _delete_pod, "delete_pod"),
    OpKind("wan", "lab", 0.6, _wan, "wan"),
    # operator actions (what on-call types)
    OpKind("status", "status", 1.5, lambda _r, _w: {"argv": ["status", "-f", "json"]}),
    OpKind("switchover", "rolegen", 2, _verb("switchover")),
    OpKind("failover", "rolegen", 1.5, _verb("failover")),
    OpKind("failover-accept-loss", "rolegen", 0.4, _verb("failover", extra=("--accept-data-loss",))),
    OpKind("failback", "rolegen", 1.5, _verb("failback")),
    OpKind("reseed", "rolegen", 0.6, _verb("reseed", "--env")),
    OpKind("apply", "rolegen", 0.8, _verb("apply", "--env")),
    OpKind("twice", "twice", 0.8, _twice),
    OpKind("killed", "killed", 1, _killed),
    OpKind("follow-hint", "hint", 1.5, lambda _r, _w: {}),
)}


@dataclass(frozen=True)
class Op:
    at: float  # seconds from the schedule's start
    op: str  # a key of OPS
    args: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        if "argv" in self.args:
            return "rolegen " + " ".join(self.args["argv"]) + (
                f" (SIGKILL after {self.args['kill_after']}s, re-run)" if "kill_after" in self.args else "")
        if "argvs" in self.args:
            return " & ".join("rolegen " + " ".join(a) for a in self.args["argvs"])
        if self.op == "follow-hint":
            return "follow the last refusal's hint"
        words = [f"{k}={v}" for k, v in sorted(self.args.items()) if v is not None]
        return f"lab {self.op} {' '.join(words)}".rstrip()


@dataclass(frozen=True)
class Schedule:
    seed: int | None  # None: written by hand
    ops: tuple[Op, ...]
    baseline: str = "gold"

    @property
    def length(self) -> float:
        return self.ops[-1].at if self.ops else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "seed": self.seed, "baseline": self.baseline,
                "ops": [{"at": op.at, "op": op.op, "args": op.args} for op in self.ops]}

    def lines(self) -> list[str]:
        head = f"schedule seed {self.seed}" if self.seed is not None else "schedule (replay file)"
        return [f"{head}: {len(self.ops)} operations over {self.length:.1f} s",
                *(f"  {op.at:7.2f}s  {op.text()}" for op in self.ops)]


def delay(r: random.Random, ttl: float) -> float:
    """From "at once" to beyond ttl: what a fault does depends on whether the lock expired meanwhile."""
    bucket = r.random()
    if bucket < 0.25:
        return 0.0
    if bucket < 0.65:
        return r.uniform(0.1, 3.0)
    if bucket < 0.9:
        return r.uniform(3.0, ttl)
    return r.uniform(ttl, 1.6 * ttl)


def generate(seed: int, *, seconds: float = 60, sites: tuple[str, ...] = ("gold", "golddr"), ttl: float = 20,
             lab_ops: Collection[str] | None = None, baseline: str = "gold") -> Schedule:
    """The schedule of `seed`: operations until `seconds` of offsets have passed. `lab_ops`: the control ops the
    lab knows (None: all); entries needing another are never drawn."""
    r = random.Random(seed)
    world = World(tuple(sorted(sites)), ttl)
    kinds = [k for k in OPS.values() if k.lab_op is None or lab_ops is None or k.lab_op in lab_ops]
    ops: list[Op] = []
    at = round(r.uniform(0.5, 2.0), 2)  # a moment of writes first
    while at <= seconds:
        for _ in range(20):  # an entry that does not apply now is drawn again
            kind = r.choices(kinds, weights=[k.weight for k in kinds])[0]
            args = kind.draw(r, world)
            if args is not None:
                break
        else:
            break
        kind.effect(world, args)
        ops.append(Op(at, kind.name, args))
        at = round(at + delay(r, ttl), 2)
    return Schedule(seed, tuple(ops), baseline)


def save(schedule: Schedule, path: Path) -> Path:
    from rolegen.offline import yamlio

    data = schedule.as_dict()
    text = yamlio.dump(data) if path.suffix in (".yaml", ".yml") else json.dumps(data, indent=1) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path) -> Schedule:
    """A replay file: every op must be a known entry of OPS (a typo fails here, not halfway through a run)."""
    import yaml

    from rolegen.offline import yamlio

    try:
        text = path.read_text(encoding="utf-8")
        data = yamlio.load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read the replay file {path}: {exc}",
                         hint="a file saved by rolegen lab chaos") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("ops"), list):
        raise UsageError(f"{path} is not a chaos replay file ({FORMAT})", hint="a file saved by rolegen lab chaos")
    ops = []
    for number, item in enumerate(data["ops"], 1):
        if not isinstance(item, dict) or item.get("op") not in OPS or not isinstance(item.get("at"), int | float):
            raise UsageError(f"{path}: operation {number} is not one of {', '.join(OPS)} with an offset `at`",
                             hint="fix that entry, or save the schedule again with rolegen lab chaos")
        ops.append(Op(float(item["at"]), str(item["op"]), dict(item.get("args") or {})))
    ops.sort(key=lambda op: op.at)
    return Schedule(data.get("seed"), tuple(ops), str(data.get("baseline") or "gold"))

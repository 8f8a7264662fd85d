"""The lab's fault verbs (`kill|start|pause|resume|cut|heal|lose|restore`, the operator's
`api-cut|api-slow|api-flaky|api-heal|delete-pod|maintenance`, the tunnel's `wan`, the witness site's `witness-*`
(rolegen_lab.control.witness_words)), sent to the lab daemon's control socket; each returns the line telling what
changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rolegen.errors import UsageError
from rolegen.results import Message
from rolegen_lab.control.channel import connect
from rolegen_lab.control.witness_words import tunnel_cut, witness_fault


def parse_target(target: str) -> tuple[str, str | None]:
    """`SITE` or `SITE/MEMBER` (a member name, an ordinal, or `leader`)."""
    site, _, member = target.partition("/")
    if not site or (_ and not member) or "/" in member:
        raise UsageError(f"bad target {target!r}", hint="SITE or SITE/MEMBER, e.g. gold or gold/patroni-0 or "
                         "gold/leader")
    return site, member or None


_DONE = {"kill": "killed", "start": "started", "pause": "paused (Patroni SIGSTOPped, PostgreSQL running)",
         "resume": "resumed"}


def fault(root: Path, op: str, target: str | None = None, **args: Any) -> Message:
    """One fault operation on the running lab; returns the line telling what changed."""
    return Message(_fault(root, op, target, **args))


def _fault(root: Path, op: str, target: str | None, **args: Any) -> str:
    if op in _DONE:
        site, member = parse_target(target or "")
        names = connect(root).request(op, site=site, member=member, **args)
        if not names:
            return f"Not changed: no member of {site} to {op}"
        note = ""
        if op == "kill":
            restart = args.get("restart", True)
            note = " (the lab restarts them at once)" if restart else f" (kept down until: rolegen lab start {target})"
        return f"{site}: {', '.join(names)} {_DONE[op]}{note}"
    if op == "cut":
        return tunnel_cut(connect(root).request(op, site=target, **args), args.get("direction", "both"))
    if op == "heal":
        sites = connect(root).request(op, site=target)
        return f"tunnel towards {', '.join(sites)} healed" if sites else "Not changed: no tunnel was cut"
    if op.startswith("witness_"):
        return witness_fault(root, op, target, **args)
    if op == "kill_guard":
        site, member = parse_target(target or "")
        names = connect(root).request(op, site=site, member=member or "leader")
        return f"{site}: witness guard of {', '.join(names)} killed (its container ends with it; the lab restarts it)"
    if op == "skew":
        connect(root).request(op, site=target, **args)
        off = float(args["seconds"])
        return f"{target}: standby guard's wall clock {off:+g} s off" if off else \
            f"{target}: standby guard's wall clock true again"
    if op == "lose":
        connect(root).request(op, site=target, **args)
        route = "its API's route drops packets" if args.get("dark") else "API server stopped"
        return f"{target}: lost (members killed and kept down, {route}, tunnel and master cut)"
    if op == "restore":
        connect(root).request(op, site=target, **args)
        if args.get("api_only"):
            return f"{target}: API server answers again"
        late = args.get("tunnel_after") or 0
        return f"{target}: API server answers again; members and links back" + (
            f" (the tunnel, both ways, only in {late:g}s)" if late else "")
    return _operator_fault(root, op, target, **args)


_API_DONE = {"api_cut": "refused (a VPN or API load balancer down)",
             "api_slow": "accepted and never answered (past kubectl's request timeout)",
             "api_flaky": "failing for a fraction {rate:g} of connections (reset or HTTP 503)"}


def _operator_fault(root: Path, op: str, target: str | None, **args: Any) -> str:
    """The operator's side (API routes, Pod deletion, maintenance mode) and the tunnel's WAN settings."""
    if op in _API_DONE:
        connect(root).request(op, site=target, **args)
        return f"{target}: the operator's connections to its API are now {_API_DONE[op].format(**args)}; " \
               "the site itself sees nothing"
    if op == "api_heal":
        sites = connect(root).request(op, site=target)
        return f"the operator reaches the API of {', '.join(sites)} again" if sites else \
            "Not changed: no API route was faulted"
    if op == "wan":
        result = connect(root).request(op, site=target, **args)
        if not any(args.values()):
            return f"tunnel towards {', '.join(result['sites'])}: plain loopback (no WAN settings)"
        parts = [f"latency {args['latency_ms']:g} ms +- {args['jitter_ms']:g}"] * bool(args.get("latency_ms"))
        parts += [f"rate cap {args['rate_mbit']:g} Mbit/s per direction"] * bool(args.get("rate_mbit"))
        parts += [f"random resets every ~{args['reset_every_s']:g} s"] * bool(args.get("reset_every_s"))
        return f"tunnel towards {', '.join(result['sites'])}: {', '.join(parts)} (open connections reconnect)"
    if op == "delete_pod":
        site, member = parse_target(target or "")
        if member is None:
            raise UsageError("delete-pod needs SITE/MEMBER", hint="e.g. rolegen lab delete-pod gold/patroni-0")
        names = connect(root).request(op, site=site, member=member)
        return f"{site}: Pod {', '.join(names)} force-deleted (the StatefulSet recreates it, restartCount 0)"
    if op == "maintenance":
        connect(root).request(op, site=target, **args)
        return f"{target}: Patroni maintenance mode " + ("on (pause: true)" if args.get("on", True) else "off")
    raise UsageError(f"unknown lab fault {op!r}")

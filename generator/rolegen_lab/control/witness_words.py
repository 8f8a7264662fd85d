"""What the links cut one way and the witness site's verbs say (`rolegen lab cut --drop`, `witness-cut|witness-heal|
witness-lose|witness-restore`, sent to the lab daemon's control socket), and `lab status`'s lines for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rolegen_lab.control.channel import connect

# A link's cut as `lab status` names it (the value of Lab.faults()'s tunnel_cut / witness_link)
CUT_WORDS = {"both": "cut", "requests": "requests dropped", "answers": "answers dropped"}


def link_words(what: str, cut: str | None) -> list[str]:
    """`tunnel towards it cut`, `link to the witness: answers dropped`, or nothing."""
    if not cut:
        return []
    return [f"{what} cut" if cut == "both" else f"{what}: {CUT_WORDS.get(cut, cut)}"]


def witness_words(faults: dict[str, Any]) -> list[str]:
    """`lab status`'s words for the witness site's own faults (Lab.faults()["witness"])."""
    return ["LOST"] * bool(faults.get("lost")) + link_words("operator's link to it", faults.get("operator_link"))


def witness_lines(witness: dict[str, Any]) -> list[str]:
    """`lab status`'s lines for the witness site (Lab.describe()["witness"])."""
    kubeconfigs = ", ".join(f"{site} {path}" for site, path in sorted(witness["kubeconfigs"].items()))
    out = [f"witness: context {witness['context']} (the operator's route), namespace {witness['namespace']}; "
           f"the sites' routes: {kubeconfigs}"]
    if witness.get("faults"):
        out.append(f"  faults: {', '.join(witness['faults'])}")
    return out


def tunnel_cut(sites: list[str], direction: str) -> str:
    towards = ", ".join(sites)
    if direction == "requests":
        return f"tunnel towards {towards} cut one way: what the peer sends is dropped (open streams still deliver " \
               "to it)"
    if direction == "answers":
        return f"tunnel towards {towards} cut one way: what comes back to the peer is dropped (its requests still " \
               "arrive)"
    return f"tunnel towards {towards} cut (replication and peer checks stop; local writes continue)"


_LINK_CUT = {"both": "cut both ways (connections refused)",
             "requests": "cut one way: requests dropped (nothing reaches the witness)",
             "answers": "cut one way: answers dropped (requests reach the witness and are applied; no answer comes "
                        "back)"}


def _whose(party: str) -> str:
    return "the operator's" if party == "operator" else f"{party}'s"


def witness_fault(root: Path, op: str, target: str | None, **args: Any) -> str:
    """One witness operation on the running lab; the line telling what changed."""
    if op == "witness_cut":
        party = connect(root).request(op, site=target, **args)
        return f"{_whose(party)} link to the witness {_LINK_CUT[args.get('direction', 'both')]}"
    if op == "witness_heal":
        parties = connect(root).request(op, site=target)
        return f"links to the witness healed: {', '.join(parties)}" if parties else \
            "Not changed: no link to the witness was cut"
    if op == "witness_lose":
        connect(root).request(op)
        return "witness: lost (its API server and etcd stopped; every route to it refuses)"
    connect(root).request("witness_restore")
    return "witness: answers again, with its data (links cut before stay cut)"

"""Which repair brings a returning site onto the leader's history, pure: what a failback's preflight decides, and
what `rolegen status` names for a DIVERGED site, from the same evidence.

pg_rewind cannot work when the system ids differ, a timeline number was used on both sites, or the site went
further than the leader (procedures/divergence.py): only a re-seed can. Otherwise `--method auto` rewinds, unless
a rewind would move at least as much over the link as a re-seed (procedures/failback_bytes.py, from the members'
published figures; an unknown prediction leaves safety alone to decide).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rolegen.cluster.health import system_ids_differ
from rolegen.cluster.site_state import SiteState
from rolegen.errors import RolegenError
from rolegen.procedures.divergence import divergence
from rolegen.procedures.failback_bytes import Prediction, mib, predict
from rolegen.prometheus import Family

Method = Literal["rewind", "reseed", "auto"]  # as asked (--method)
Chosen = Literal["rewind", "reseed"]  # as done
BY_SIZE = "a rewind would move at least as much as a re-seed"


def rewind_blocker(back: SiteState, cur: SiteState) -> str | None:
    """Why pg_rewind cannot bring `back` onto `cur`'s history (None: it can, or nothing needs repair)."""
    if system_ids_differ(back, cur):
        return f"system ids differ ({back.initialize} vs {cur.initialize})"
    found = divergence(back, cur)
    return found.reason if found is not None and found.repair == "reseed" else None


def choose_method(method: Method, blocker: str | None, prediction: Prediction | None = None) -> Chosen:
    """The repair a failback starts with: re-seed when asked, or when `auto` and pg_rewind cannot work
    (`blocker`, from rewind_blocker) or would move at least as much as a re-seed (both predicted from the members'
    figures); rewind otherwise. Asked for a rewind that cannot work: refused."""
    if method == "rewind" and blocker:
        raise RolegenError(f"pg_rewind cannot work: {blocker}", hint="use --method reseed (or auto)")
    larger = method == "auto" and prediction is not None and prediction.favours_reseed
    return "reseed" if method == "reseed" or (method == "auto" and blocker) or larger else "rewind"


@dataclass(frozen=True)
class Repair:
    method: Chosen
    blocker: str | None  # why pg_rewind cannot work (None: it can)
    by_size: bool  # `auto` re-seeds because a rewind would move at least as much
    prediction: Prediction

    @property
    def why(self) -> str:
        """Why this method, when it is not the plain rewind: the blocker, or the sizes."""
        return self.blocker or (BY_SIZE if self.by_size else "")

    def moves(self) -> str:
        """What it would move over the link, in one line (`rolegen status`)."""
        p = self.prediction
        reseed = f"a re-seed about {mib(p.reseed)}" if p.reseed is not None else "a re-seed: unknown"
        whys = "".join(f" ({why})" for why in p.why)
        if self.blocker:  # only a re-seed can repair it: what the rewind would have needed does not matter
            return reseed + (whys if p.reseed is None else "")
        rewind = f"a rewind about {mib(p.rewind)}" if p.rewind is not None else "a rewind: unknown"
        return f"{rewind}, {reseed}" + (whys if p.rewind is None or p.reseed is None else "")

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "why": self.why, "predicted": self.prediction.as_dict()}


def plan(back: SiteState, cur: SiteState, method: Method = "auto", prediction: Prediction | None = None) -> Repair:
    """The repair of `back` from `cur`'s leading member, as `rolegen failback --method METHOD` would choose it."""
    blocker = rewind_blocker(back, cur)
    prediction = prediction if prediction is not None else predict(back, cur)
    chosen = choose_method(method, blocker, prediction)
    return Repair(chosen, blocker, method == "auto" and chosen == "reseed" and not blocker, prediction)


def repair_families(repairs: dict[str, Repair]) -> list[Family]:
    """What a failback of each site would move over the link, by method (a method that cannot work, or whose
    figures are missing, is absent rather than a guess)."""
    family = Family("rolegen_failback_predicted_bytes", "Bytes a failback of the DIVERGED site would move over the "
                    "DR link, by method (rewind, reseed), predicted from the members' published figures.")
    for site, repair in sorted(repairs.items()):
        p = repair.prediction
        if p.rewind is not None and not repair.blocker:
            family.add(p.rewind, site=site, method="rewind")
        if p.reseed is not None:
            family.add(p.reseed, site=site, method="reseed")
    return [family]

"""The witness as `rolegen status` shows it: one read of the pair's witness Lease (rolegen.witness.lease), what the
specs declare, and whether automatic failover is armed: mode automatic, the Lease read, and held by the site whose
spec declares leader (only the holder may lead while automatic mode is on).

A read that failed is shown as such, never as "no lease". In manual mode the witness is information: nothing in it
makes the pair unhealthy. In automatic mode an unreadable witness, a missing Lease or another holder is a problem
line naming what clears it. From one read nothing can be said about the Lease's age (the guards measure change on
their own clocks); its renewTime is shown as written, for people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rolegen.cluster.kubectl import ClusterError
from rolegen.cluster.site_state import SiteState
from rolegen.cluster.slot_status import mib
from rolegen.offline.spec import TIMER_NAMES, Spec, Witness
from rolegen.procedures.rules import lsn_text
from rolegen.prometheus import Family
from rolegen.witness.lease import WitnessLease, WitnessView

DOCS = 'docs/witness.md, "The spec\'s witness block"'


@dataclass
class WitnessStatus:
    """`sites`: the pair's two environments; `leader`: the one whose spec declares leader; `live_leader`: the one
    Patroni reports leading (None: none or unknown). `view` None: the read failed (`error`)."""

    witness: Witness
    sites: tuple[str, str]
    leader: str | None
    live_leader: str | None
    view: WitnessView | None
    error: str | None = None

    @property
    def exists(self) -> bool:
        return self.view is not None and self.view.version is not None

    @property
    def holder(self) -> str | None:
        return self.view.holder if self.view is not None else None

    @property
    def armed(self) -> bool:
        return self.witness.automatic and self.exists and self.leader is not None and self.holder == self.leader

    def _kubectl(self) -> str:
        return f"kubectl --context {self.witness.context} -n {self.witness.namespace}"

    @property
    def problems(self) -> list[str]:
        """Only in automatic mode: there, a witness not armed means a site loss waits for a human again."""
        if not self.witness.automatic or self.armed:
            return []
        w, lease = self.witness, self.witness.lease
        if self.view is None:
            return [f"witness lease {lease} unreadable (context {w.context}): automatic failover cannot be shown "
                    f"armed; clear: check the route to the witness site: {self._kubectl()} get lease {lease}"]
        if not self.exists:
            leader = self.leader or "the leading site"
            return [f"witness lease {lease} does not exist (context {w.context}, namespace {w.namespace}): automatic "
                    f"failover is not armed; clear: {leader}'s witness guard creates it at its first renewal; if "
                    f"none runs, create it held by {leader} ({DOCS})"]
        if self.leader is None:
            return [f"witness lease {lease} is held by {self.holder or 'nobody'} and no spec declares leader: "
                    "automatic failover is not armed; clear: record the site that leads: rolegen render --env ENV "
                    "--role leader"]
        if self.holder is not None and self.holder == self.live_leader:
            clear = f"the spec lags behind: rolegen render --env {self.holder} --role leader (records it)"
        else:
            patch = json.dumps({"spec": {"holderIdentity": self.leader}}, separators=(",", ":"))
            clear = f"give it to the site that leads: {self._kubectl()} patch lease {lease} --type merge -p '{patch}'"
        return [f"witness lease {lease} is held by {self.holder or 'nobody'}, not {self.leader} (its spec declares "
                f"leader): automatic failover is not armed (only the holder may lead); clear: {clear}"]

    def _armed_line(self) -> str:
        if self.armed:
            return f"automatic failover: armed ({self.leader}, declared leader, holds the lease)"
        if not self.witness.automatic:
            reason = "mode manual: every failover is manual"
        elif self.view is None:
            reason = "the witness could not be read"
        elif not self.exists:
            reason = "no lease"
        elif self.leader is None:
            reason = "no spec declares leader"
        else:
            reason = f"{self.holder or 'nobody'} holds the lease, {self.leader} is declared leader"
        return f"automatic failover: not armed ({reason})"

    def lines(self) -> list[str]:
        w = self.witness
        limit = "" if w.lag_limit is None else f" (lag limit {w.lag_limit} bytes, {mib(w.lag_limit)})"
        head = (f"witness (context {w.context}, namespace {w.namespace}): lease {w.lease}; mode {w.mode}, "
                f"replication {w.replication}{limit}")
        if self.view is None:
            return [f"{head}; UNREADABLE: {self.error}", f"  {self._armed_line()}"]
        out = [head]
        if not self.exists:
            out.append(f"  lease {w.lease} does not exist")
        else:
            view = self.view
            lsn = lsn_text(view.lsn) if view.lsn is not None else "-"
            out.append(f"  holder {view.holder or '-'}  published lsn {lsn}  renewed {view.renew_time or '-'}  "
                       f"transitions {view.transitions}")
        return [*out, f"  {self._armed_line()}"]

    def as_dict(self) -> dict[str, Any]:
        w, view = self.witness, self.view
        lease: dict[str, Any] | None = None
        if view is not None and view.version is not None:
            lease = {"holder": view.holder, "resource_version": view.version, "published_lsn": view.lsn,
                     "published_lsn_text": None if view.lsn is None else lsn_text(view.lsn),
                     "renew_time": view.renew_time, "transitions": view.transitions}
        return {
            "context": w.context,
            "namespace": w.namespace,
            "lease_name": w.lease,
            "mode": w.mode,
            "replication": w.replication,
            "lag_limit_bytes": w.lag_limit,
            "timers": {name: getattr(w.timers, name) for name in TIMER_NAMES},
            "declared_leader": self.leader,
            "read": view is not None,
            "error": self.error,
            "lease": lease,
            "armed": self.armed,
        }

    def families(self) -> list[Family]:
        """The witness as metric families (rolegen.commands.status.pair_metrics adds them to the pair's)."""
        up = Family("rolegen_witness_up", "1 when the witness's API answered rolegen's read of its Lease, 0 when "
                    "it did not.")
        held = Family("rolegen_witness_lease_held", "1 for the site holding the witness Lease (the only one that "
                      "may lead in automatic mode), 0 for the other.")
        armed = Family("rolegen_witness_armed", "1 when automatic failover is armed: mode automatic and the witness "
                       "Lease held by the site whose spec declares leader.")
        lsn = Family("rolegen_witness_published_lsn_bytes", "The last WAL position the leading site's guard "
                     "published with a renewal of the witness Lease.")
        up.add(self.view is not None)
        armed.add(self.armed)
        if self.view is not None:
            for site in self.sites:
                held.add(self.holder == site, site=site)
            if self.view.lsn is not None:
                lsn.add(self.view.lsn)
        return [up, held, armed, lsn]


def read_lease(lease: WitnessLease) -> tuple[WitnessView | None, str | None]:
    """One read of the Lease: (view, None), or (None, the error) when the read failed (never a missing Lease)."""
    try:
        return lease.read(), None
    except ClusterError as exc:
        return None, exc.message


def pair_witness(spec: Spec, witness: Witness, specs: Mapping[str, Spec], live: Mapping[str, SiteState | None],
                 view: WitnessView | None, error: str | None) -> WitnessStatus:
    """The pair of `spec` as its witness sees it, beside what the specs declare and who Patroni says leads (`live`:
    each site as read, None when unreachable)."""
    first, second = sorted((spec.environment, spec.peer.environment))
    leaders = [n for n in (first, second) if specs[n].role == "leader"]
    leading = [n for n in (first, second) if (s := live.get(n)) is not None and s.live_role == "leader"]
    return WitnessStatus(witness, (first, second), leaders[0] if len(leaders) == 1 else None,
                         leading[0] if len(leading) == 1 else None, view, error)

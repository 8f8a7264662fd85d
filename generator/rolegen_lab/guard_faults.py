"""Faults of automatic failover's guards (a mixin of `Lab`, by site name; `rolegen lab up --automatic`): a member's
witness guard killed, and a site's standby guard (`rolegen guard`) on a skewed clock. What `rolegen lab kill-guard|
skew` and the partition-matrix drills do; each returns what it changed.

A witness guard is its container's first process. The node agent treats its death as a container's end: the rest
of the container (Patroni, PostgreSQL) is SIGKILLed at once, as the kernel ends every process of a PID namespace
whose init died, then restarted (restartPolicy Always).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rolegen.cluster.pair import witness_lease
from rolegen.errors import RolegenError
from rolegen.offline.workspace import load_workspace

if TYPE_CHECKING:
    from rolegen_lab.site import LabSite
    from rolegen_lab.witness_guards import StandbyGuards

_AUTOMATIC = "rolegen lab down, then rolegen lab up --automatic"


class GuardFaults:
    guards: StandbyGuards | None
    guard_pods: bool = False  # the standby guards run as the chart's Pods (no clock shim there)
    env_dir: Path
    kubeconfig_direct: Path

    def site(self, name: str) -> LabSite:
        raise NotImplementedError

    def kill_guard(self, site: str, member: str = "leader") -> list[str]:
        """SIGKILL the witness guard of `member` of `site` (default: the one leading) and nothing else."""
        return self.site(site).kill_guard(member)

    def skew(self, site: str, seconds: float) -> str:
        """`site`'s standby guard reads its wall clock `seconds` off from now on (0: true again); its monotonic
        clock is untouched, as a real skew leaves it."""
        self.site(site)
        if self.guard_pods:
            raise RolegenError("the standby guards run as the chart's Pods, which the lab's clock shim does not reach",
                               hint="rolegen lab down, then rolegen lab up --automatic (without --guard-pods)")
        if self.guards is None:
            raise RolegenError("the lab runs no standby guards", hint=_AUTOMATIC)
        self.guards.skew(site, seconds)
        return site

    def await_synchronous(self, timeout: float = 30) -> str:
        """Wait until the witness Lease says the leader runs synchronized (witness replication sync): the drills'
        baseline on a lab with sync. A leader says so only on PostgreSQL's word, a round after its peer caught
        up; a lab just up, or just failed back, may not have said it yet."""
        spec = next(iter(load_workspace(self.env_dir).specs.values()))
        lease = witness_lease(spec, kubeconfig=self.kubeconfig_direct)
        if lease is None or spec.witness is None or spec.witness.replication != "sync":
            raise RolegenError("the lab does not run witness replication sync",
                               hint="rolegen lab down, then rolegen lab up --sync")
        deadline, seen = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            with_error = None
            try:
                seen = lease.read()
            except RolegenError as exc:
                with_error = exc.message
            if seen is not None and seen.synchronous is True and with_error is None:
                return f"the witness Lease says {seen.holder} runs synchronized"
            time.sleep(0.2)
        said = "nothing" if seen is None or seen.synchronous is None else str(seen.synchronous).lower()
        raise RolegenError(f"the witness Lease did not say synchronized within {timeout:g}s (it says {said})",
                           hint="the leader's guard log: decision=sync-...")

    def guard_faults(self, site: str) -> dict[str, Any]:
        """What `faults()` reports for `site`'s guards."""
        return {"clock_skew": self.guards.skew_of(site) if self.guards is not None else 0.0}

    def heal_guards(self) -> None:
        if self.guards is not None:
            for site in self.guards.processes:
                self.guards.skew(site, 0, strict=False)

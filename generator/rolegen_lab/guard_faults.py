"""Faults of automatic failover's guards (a mixin of `Lab`, by site name; `rolegen lab up --automatic`): a member's
witness guard killed, and a site's standby guard (`rolegen guard`) on a skewed clock. What `rolegen lab kill-guard|
skew` and the partition-matrix drills do; each returns what it changed.

A witness guard is its container's first process. The node agent treats its death as a container's end: the rest
of the container (Patroni, PostgreSQL) is SIGKILLed at once, as the kernel ends every process of a PID namespace
whose init died, then restarted (restartPolicy Always).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rolegen.errors import RolegenError

if TYPE_CHECKING:
    from rolegen_lab.site import LabSite
    from rolegen_lab.witness_guards import StandbyGuards

_AUTOMATIC = "rolegen lab down, then rolegen lab up --automatic"


class GuardFaults:
    guards: StandbyGuards | None

    def site(self, name: str) -> LabSite:
        raise NotImplementedError

    def kill_guard(self, site: str, member: str = "leader") -> list[str]:
        """SIGKILL the witness guard of `member` of `site` (default: the one leading) and nothing else."""
        return self.site(site).kill_guard(member)

    def skew(self, site: str, seconds: float) -> str:
        """`site`'s standby guard reads its wall clock `seconds` off from now on (0: true again); its monotonic
        clock is untouched, as a real skew leaves it."""
        self.site(site)
        if self.guards is None:
            raise RolegenError("the lab runs no standby guards", hint=_AUTOMATIC)
        self.guards.skew(site, seconds)
        return site

    def guard_faults(self, site: str) -> dict[str, Any]:
        """What `faults()` reports for `site`'s guards."""
        return {"clock_skew": self.guards.skew_of(site) if self.guards is not None else 0.0}

    def heal_guards(self) -> None:
        if self.guards is not None:
            for site in self.guards.processes:
                self.guards.skew(site, 0, strict=False)

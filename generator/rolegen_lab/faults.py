"""Fault injection: `SiteFaults` (a mixin of `LabSite`: members killed, kept down, paused) and `LabFaults` (a mixin
of `Lab`, by site name: also the tunnel cut, both ways or one, the site lost and restored, and with a witness site
its links and its loss): what `rolegen lab kill|start|pause|resume|cut|heal|lose|restore|witness-*` and the drills
do. Each method returns what it changed, so the CLI can say so and the
daemon's control channel can carry it.

Everything acts on the lab's own processes and proxies (members, `<release>-master` proxies, tunnel endpoints),
never on API objects: the faults are the platform's, and rolegen must see them only as a user
would, through the API and the database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rolegen.errors import RolegenError
from rolegen_lab.controlplane.witness import DIRECTIONS, OPERATOR, WitnessSite
from rolegen_lab.guard_faults import GuardFaults
from rolegen_lab.network.proxy import Address
from rolegen_lab.network.wan import WanSettings
from rolegen_lab.node.members import LabMember
from rolegen_lab.operator_faults import OperatorFaults

if TYPE_CHECKING:
    from rolegen_lab.site import LabSite


class SiteFaults:
    """The member-level faults of one site (a mixin of LabSite, which owns these attributes)."""

    env: str
    members: dict[int, LabMember]
    held: set[int]
    paused: set[int]
    _lock: threading.RLock
    _leader: Address | None

    def _find_leader(self) -> Address | None:
        raise NotImplementedError

    def resolve(self, member: str | None) -> list[int]:
        """Ordinals meant by a member selector: None = every member, `leader` = the one answering /leader,
        else a member name (`patroni-1`) or an ordinal (`1`)."""
        with self._lock:
            if member is None:
                return sorted(self.members)
            if member == "leader":
                found = [o for o, m in sorted(self.members.items()) if o not in self.paused and m.is_leader()]
                if not found:
                    raise RolegenError(f"{self.env}: no member leads right now", hint="rolegen lab status")
                return found[:1]
            for ordinal, m in self.members.items():
                if member in (m.name, str(ordinal)):
                    return [ordinal]
        known = ", ".join(m.name for m in self.members.values())
        raise RolegenError(f"{self.env} has no member {member!r}", hint=f"members: {known}")

    def kill(self, member: str | None = None, restart: bool = True) -> list[str]:
        """SIGKILL Patroni and PostgreSQL. restart=True: the node agent restarts them at once (a kubelet,
        restartPolicy Always, counting the restart); False: they stay down until start()."""
        with self._lock:
            ordinals = self.resolve(member)
            for ordinal in ordinals:
                if not restart:
                    self.held.add(ordinal)
                self.paused.discard(ordinal)
                self.members[ordinal].kill()
            self._leader = self._find_leader()
        return [self.members[o].name for o in ordinals]

    def kill_guard(self, member: str | None = "leader") -> list[str]:
        """SIGKILL the witness guard of `member` (automatic failover: the container's first process) and nothing
        else; the node agent ends the rest of its container and restarts it (rolegen_lab.guard_faults)."""
        with self._lock:
            ordinals = self.resolve(member)
            for ordinal in ordinals:
                pid = self.members[ordinal].guard_pid()
                if pid is None:
                    raise RolegenError(f"{self.env}: {self.members[ordinal].name} runs no witness guard",
                                       hint="rolegen lab down, then rolegen lab up --automatic")
                os.kill(pid, signal.SIGKILL)
        return [self.members[o].name for o in ordinals]

    def start(self, member: str | None = None) -> list[str]:
        """Let held-down members run again (the node agent starts them with their data)."""
        with self._lock:
            ordinals = [o for o in self.resolve(member) if o in self.held]
            self.held.difference_update(ordinals)
        return [self.members[o].name for o in ordinals]

    def pause(self, member: str | None = None) -> list[str]:
        """SIGSTOP the members' Patroni only: PostgreSQL keeps running (and a primary keeps taking writes)."""
        with self._lock:
            ordinals = [o for o in self.resolve(member) if self.members[o].running]
            for ordinal in ordinals:
                self.members[ordinal].pause()
                self.paused.add(ordinal)
        return [self.members[o].name for o in ordinals]

    def restart_postgres(self, member: str | None = "leader") -> list[str]:
        """Ask the members' Patroni to restart PostgreSQL (POST /restart, as `patronictl restart`), without waiting
        for the answer: Patroni stops it cleanly and starts it again in the role it has at that moment."""
        with self._lock:
            chosen = [self.members[o] for o in self.resolve(member) if self.members[o].running]
        for one in chosen:
            threading.Thread(target=_restart_quietly, args=(one,), daemon=True, name=f"restart-{one.name}").start()
        return [m.name for m in chosen]

    def resume(self, member: str | None = None) -> list[str]:
        with self._lock:
            ordinals = [o for o in self.resolve(member) if o in self.paused]
            for ordinal in ordinals:
                self.members[ordinal].resume()
                self.paused.discard(ordinal)
        return [self.members[o].name for o in ordinals]


def _restart_quietly(member: LabMember) -> None:
    with contextlib.suppress(RolegenError):  # a member that does not answer is not restarted: what a user sees
        member.restart_postgres()


class LabFaults(OperatorFaults, GuardFaults):
    sites: dict[str, LabSite]
    witness: WitnessSite | None = None  # the third site (Lab(witness=True), start_witness)
    _tunnel_timer: threading.Timer | None = None  # restore(tunnel_after=S): heals the tunnels later

    def site(self, name: str) -> LabSite:
        if name not in self.sites:
            raise RolegenError(f"the lab has no site {name!r}", hint=f"sites: {', '.join(sorted(self.sites))}")
        return self.sites[name]

    def _chosen(self, name: str | None) -> list[LabSite]:
        return [self.site(name)] if name else [self.sites[n] for n in sorted(self.sites)]

    def kill(self, site: str, member: str | None = None, restart: bool = True) -> list[str]:
        """SIGKILL Patroni + PostgreSQL of one member (or all of the site); restarted at once unless restart=False."""
        return self.site(site).kill(member, restart)

    def start(self, site: str, member: str | None = None) -> list[str]:
        """Members held down by `kill(restart=False)` run again, with their data."""
        return self.site(site).start(member)

    def pause(self, site: str, member: str | None = None) -> list[str]:
        """A hung Patroni: SIGSTOP, its PostgreSQL keeps running."""
        return self.site(site).pause(member)

    def resume(self, site: str, member: str | None = None) -> list[str]:
        return self.site(site).resume(member)

    def restart_postgres(self, site: str, member: str | None = "leader") -> list[str]:
        """`patronictl restart` on one member (default: the site's leader), not waited for."""
        return self.site(site).restart_postgres(member)

    def cut(self, site: str | None = None, direction: str = "both") -> list[str]:
        """Cut the TSC tunnel towards `site` (its peer can no longer reach it), or both ways. The APIs and each
        site's `<release>-master` stay up: local writes continue, replication and the guard's peer check stop.
        `direction` `requests`: only what the peer sends is dropped (an open stream from `site` still delivers);
        `answers`: only what `site` sends back (the peer's requests still arrive)."""
        if direction not in DIRECTIONS:
            raise RolegenError(f"unknown direction {direction!r}", hint=f"one of: {', '.join(DIRECTIONS)}")
        self._cancel_late_tunnel()
        chosen = self._chosen(site)
        for s in chosen:
            if direction == "both":
                s.tunnel.partition()
            else:
                s.tunnel.one_way(direction)
        return [s.env for s in chosen]

    def heal(self, site: str | None = None) -> list[str]:
        self._cancel_late_tunnel()
        chosen = [s for s in self._chosen(site) if s.tunnel.cut_direction and not s.lost]
        for s in chosen:
            s.tunnel.heal()
        return [s.env for s in chosen]

    def lose(self, site: str, dark: bool = False) -> str:
        """Site loss: every member SIGKILLed and kept down, the API server stopped, tunnel and master cut; with
        `dark` the route to its API drops packets (requests time out) instead of refusing them."""
        self.site(site).fail(dark)
        return site

    def restore(self, site: str, api_only: bool = False, tunnel_after: float = 0) -> str:
        """A lost site comes back: its API server first; with api_only=False also its members and links. With
        `tunnel_after` S > 0 the tunnel (both ways: the site hosts its end) stays cut for S seconds after the
        members start: a site that cold-starts before its tunnel."""
        s = self.site(site)
        if not s.lost:
            raise RolegenError(f"{site} is not lost", hint=f"rolegen lab start {site} restarts held-down members")
        if tunnel_after < 0:
            raise RolegenError(f"--tunnel-after {tunnel_after:g}: must not be negative")
        s.restore_api()
        if not api_only:
            if tunnel_after:
                for other in self.sites.values():
                    other.tunnel.partition()
            s.resume_members(tunnel=not tunnel_after)
            if tunnel_after:
                self._late_tunnel(tunnel_after)
        return site

    def _late_tunnel(self, seconds: float) -> None:
        """Heal both tunnels after `seconds`, unless someone healed or cut them otherwise meanwhile."""
        self._cancel_late_tunnel()
        timer = threading.Timer(seconds, self._heal_tunnels)
        timer.daemon = True
        self._tunnel_timer = timer
        timer.start()

    def _cancel_late_tunnel(self) -> None:
        """A `cut`/`heal` by hand (or heal_all) overrides a pending late tunnel."""
        if self._tunnel_timer is not None:
            self._tunnel_timer.cancel()
            self._tunnel_timer = None

    def _heal_tunnels(self) -> None:
        for s in self.sites.values():
            if not s.lost:
                s.tunnel.heal()

    def wan(self, latency_ms: float = 0, jitter_ms: float = 0, rate_mbit: float = 0, reset_every_s: float = 0,
            site: str | None = None) -> dict[str, Any]:
        """WAN behaviour of the tunnel towards `site` (default: both ways); all zero turns it off. Not a fault:
        heal_all keeps it (the link's character, not an outage)."""
        settings = WanSettings(latency_ms, jitter_ms, rate_mbit, reset_every_s)
        chosen = self._chosen(site)
        for s in chosen:
            s.tunnel.set_wan(settings)
        return {"sites": [s.env for s in chosen], **asdict(settings)}

    # -- the witness site (rolegen_lab.controlplane.witness) ------------------------------------------------
    def _witness(self) -> WitnessSite:
        if self.witness is None:
            raise RolegenError("the lab has no witness site", hint="rolegen lab up --witness")
        return self.witness

    def witness_cut(self, site: str, direction: str = "both") -> str:
        """`site`'s link to the witness (its guard's route; `operator`: the operator's) cut both ways, or one:
        `requests` (nothing reaches the witness) or `answers` (requests reach it and are applied, answers are
        dropped)."""
        return self._witness().cut(site, direction)

    def witness_heal(self, site: str | None = None) -> list[str]:
        """`site`'s link to the witness (default: every link) works again; the links that changed."""
        return self._witness().heal(site)

    def witness_lose(self) -> str:
        """The witness site goes dark: its API server and etcd stop, every route to it refuses."""
        witness = self._witness()
        if witness.lost:
            raise RolegenError("the witness is already lost", hint="rolegen lab witness-restore")
        witness.lose()
        return "witness"

    def witness_restore(self) -> str:
        """The lost witness answers again, with its data (the Lease as it was); the links' cuts stay."""
        witness = self._witness()
        if not witness.lost:
            raise RolegenError("the witness is not lost", hint="rolegen lab status")
        witness.restore()
        return "witness"

    def faults(self) -> dict[str, dict[str, Any]]:
        """Every fault in force, per site, and the witness's own with a witness site (what `heal_all` undoes)."""
        witness = self.witness
        in_force: dict[str, dict[str, Any]] = {
            name: {
                "lost": s.lost,
                "api_down": s.api_down,
                "tunnel_cut": s.tunnel.cut_direction,
                "witness_link": witness.link(name) if witness else None,
                "held": sorted(s.members[o].name for o in s.held),
                "paused": sorted(s.members[o].name for o in s.paused),
                **self.operator_faults(s),
                "wan": None if s.tunnel.wan.off else s.tunnel.wan.as_dict(),
                **self.guard_faults(name),
            }
            for name, s in sorted(self.sites.items())
        }
        if witness is not None:
            in_force["witness"] = {"lost": witness.lost, "operator_link": witness.link(OPERATOR)}
        return in_force

    def heal_all(self) -> dict[str, dict[str, Any]]:
        """Undo every fault: lost sites restored, held members started, paused ones resumed, tunnels healed,
        the operator's API routes healed, maintenance mode ended, the witness restored and its links healed (WAN
        settings stay). Returns the faults that were in force."""
        before = self.faults()
        self._cancel_late_tunnel()
        for name, s in sorted(self.sites.items()):
            if s.lost:
                self.restore(name)
            s.resume()
            s.start()
            s.tunnel.heal()
        self.heal_operator()
        self.heal_guards()
        if self.witness is not None:
            if self.witness.lost:
                self.witness.restore()
            self.witness.heal()
        return before

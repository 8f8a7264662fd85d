"""The standby site's guard, its loop: it watches the witness Lease and its own standby leader, grants the leader's
guard its promises, and promotes its site when rolegen.witness.rules.StandbyGuard allows it (docs/witness.md).

Every input is an observation on this process's monotonic clock. A read that failed is no observation: a witness
it cannot read shows no change (the quiet goes on), but a promotion needs the Lease *taken* with the version last
seen, which fails if the leader renewed since, or if the witness cannot be reached; a site it cannot read counts as
a standby that still receives (a failed read is never "go ahead"). The promotion itself is `rolegen failover`'s
steps (`promote`), run once the Lease is this site's.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rolegen.errors import RolegenError
from rolegen.witness.lease import LeaseLost, WitnessView
from rolegen.witness.rules import StandbyGuard, Timers

# (reason, message, type: Normal | Warning): one Kubernetes Event per decision that matters to people reading
# `kubectl get events` on this site (rolegen.commands.guard writes them; best effort, never in the way).
Notify = Callable[[str, str, str], None]


def _quiet(_reason: str, _message: str, _kind: str) -> None:
    pass


@dataclass(frozen=True)
class SiteView:
    """This site's standby leader as its Patroni last reported it: streaming from the peer, and how far it got."""

    receiving: bool
    received_lsn: int | None
    standby: bool = False  # the site's leader is a standby leader: the site does not lead


@dataclass(frozen=True)
class Ports:
    """What the loop reads and does; each may raise RolegenError (a failed read or write)."""

    read_lease: Callable[[], WitnessView]
    read_site: Callable[[], SiteView]
    take_lease: Callable[[WitnessView], WitnessView]
    promote: Callable[[], None]
    # The Lease kept by this site, at the version read (raises LeaseLost if another site holds it). None: no
    # renewal while the failover steps run.
    renew_lease: Callable[[WitnessView], WitnessView] | None = None
    # The role this site's spec declares now: a promotion left undone is resumed only on a declared standby (a
    # declared leader holding the Lease while a standby was fenced by its own guard: a human reopens it).
    declared: Callable[[], str] = lambda: "standby-leader"


class StandbyLoop:
    """One decision per `step()`; `grant()` answers the leader guard's promise requests (any thread)."""

    def __init__(self, site: str, timers: Timers, lag_limit: int | None, ports: Ports, log: Callable[[str], None],
                 now: Callable[[], float] = time.monotonic, notify: Notify = _quiet) -> None:
        self.site, self.lag_limit, self.ports, self.log, self.now = site, lag_limit, ports, log, now
        self.notify = notify
        self._failing: str | None = None  # the failover's last error while it keeps stopping (one Event for it)
        self._decided: str | None = None  # the rules' last decision (an Event when they start refusing)
        self._not_taken: str | None = None  # why the last takes failed, while they keep failing (one Event)
        self.guard = StandbyGuard(timers, started=now())
        self.seen: WitnessView | None = None
        self.lock = threading.Lock()
        self.took = False  # this guard took the Lease: the failover is its to finish
        self.promoted = False
        self._said: dict[str, str] = {}  # per topic (a decision, a read that failed): the last line said
        self._standby = False  # this site is a standby while holding the Lease (`_stranded`)
        self._next_look = 0.0
        self._holding: threading.Event | None = None  # set to stop the renewals of a Lease taken to promote

    def grant(self) -> bool:
        with self.lock:
            return self.guard.grant(self.now())

    def _say(self, line: str, key: str | None = None, topic: str = "decision") -> None:
        """One line per decision that changed (`key`: what counts as the same decision), not one per step; a
        failed read has its own topic, so a witness out of reach does not repeat the decision every look."""
        if (key or line) != self._said.get(topic):
            self.log(line)
            self._said[topic] = key or line

    def step(self) -> str:
        """Look once and act; returns the decision (wait, refuse-lag, promote, lead, error)."""
        try:
            view = self.ports.read_lease()
        except RolegenError as exc:
            view = None
            self._say(f"witness-guard: witness unreadable ({exc.message}): no change seen", topic="witness")
        if view is not None:
            self._said.pop("witness", None)  # its next failure is news again
        with self.lock:
            at = self.now()
            if view is not None:
                if view.version is not None:
                    self.guard.saw_lease(view.version, at)
                self.seen = view
        if self.seen is not None and self.seen.holder not in (None, self.site) and self.took and self.promoted:
            # A role change gave the Lease back (failback): this site is the standby again, and its guard watches
            # afresh, granting promises (its old `promoting` would refuse them all and fence the new leader).
            with self.lock:
                self.guard = StandbyGuard(self.guard.timers, started=at)
                self.guard.saw_lease(self.seen.version or "", at)
            self.took = self.promoted = False
            self._release()
            self._failing = None
            self._say(f"witness-guard: decision=watch (the witness lease is {self.seen.holder}'s again)")
            self.notify("WitnessGuardWatching", f"the witness Lease is {self.seen.holder}'s again: {self.site}'s "
                        "guard watches afresh and grants promises", "Normal")
        if self.seen is not None and self.seen.holder == self.site:
            if self.took and not self.promoted:  # a failover that stopped holding the lease: its re-run resumes it
                return self._run_failover()
            if self.took or view is None or not self._stranded(at):
                self._say(f"witness-guard: decision=lead (the witness lease is {self.site}'s)")
                return "lead"
            # The Lease is this site's, yet the site is a standby: below, the same rules as a takeover decide
            # whether to finish the promotion, only without taking the Lease.
        try:
            site = self.ports.read_site()
            self._said.pop("site", None)
        except RolegenError as exc:
            site = SiteView(True, None)
            self._say(f"witness-guard: own site unreadable ({exc.message}): counted as still receiving", topic="site")
        with self.lock:
            action, why = self.guard.decide(at, receiving=site.receiving, received_lsn=site.received_lsn,
                                            published_lsn=None if self.seen is None else self.seen.lsn,
                                            lag_limit=self.lag_limit,
                                            synchronous=None if self.seen is None else self.seen.synchronous)
        self._say(f"witness-guard: decision={action} ({why})", key=f"{action}:{re.sub(r'[0-9.]+', 'N', why)}")
        before, self._decided = self._decided, action
        if action == "refuse-lag" and before != action:  # one Event each time the rules start refusing
            self.notify("AutomaticFailoverRefused", f"{self.site} may not fail over by itself: {why}; the failover "
                        "stays manual (rolegen failover)", "Warning")
        if action != "promote":
            self._not_taken = None
            return action
        if self.seen is not None and self.seen.holder == self.site:
            return self._resume(why)
        return self._promote(why)

    def _stranded(self, at: float) -> bool:
        """This site, declared a standby, is a standby while holding the Lease (looked at once per renew_every; a
        failed read is no evidence). The Lease is given only to a site about to be promoted (a guard's takeover,
        a role change's step right before the promotion) and the old leader's guard fences on seeing it: a
        declared standby left a standby with it was left by a guard that died (its Pod rescheduled) or a role
        change that stopped after that step, and maybe no site leads. The rules decide as for a takeover (a whole
        promote_after without a sign of the old leader, nothing received, the lag within its limit), and the
        Lease is written back at the version read, as a takeover's, before anything is promoted. A declared
        leader holding the Lease as a standby was fenced by its own guard: a human reopens it."""
        if at >= self._next_look:
            self._next_look = at + self.guard.timers.renew_every
            try:
                self._standby = self.ports.declared() == "standby-leader" and self.ports.read_site().standby
            except RolegenError:
                self._standby = False
        return self._standby

    def _write_back(self) -> str | None:
        """The Lease written with this site as holder at the version last seen (a takeover, or a resume's
        confirmation); None when written, else why not. Not written (the leader renewed, or the witness is out of
        reach): nothing was promoted, so promises may be granted again; the next change seen starts the quiet
        over."""
        try:
            if self.seen is None:
                raise RolegenError("the witness lease was never read")
            self.seen = self.ports.take_lease(self.seen)
        except RolegenError as exc:
            with self.lock:
                self.guard.promoting = False
            return exc.message
        return None

    def _resume(self, why: str) -> str:
        failed = self._write_back()  # if anyone changed the Lease since this look, nothing is promoted
        if failed is not None:
            self.log(f"witness-guard: decision=wait (lease not confirmed: {failed})")
            return "wait"
        self.took = True
        self.log(f"witness-guard: decision=promote (the witness lease is already {self.site}'s while it is a "
                 f"standby: {why}; running the failover steps)")
        self.notify("WitnessLeaseTaken", f"{self.site}'s guard resumes a promotion left undone: the witness Lease "
                    f"is {self.site}'s while it is a standby; {why}", "Normal")
        return self._run_failover()

    def _promote(self, why: str) -> str:
        failed = self._write_back()
        if failed is not None:
            self.log(f"witness-guard: decision=wait (lease not taken: {failed})")
            why_not = re.sub(r"[0-9.]+", "N", failed)
            if why_not != self._not_taken:  # a witness out of reach fails every look: one Event, not one a second
                self.notify("WitnessLeaseNotTaken", f"{self.site}'s guard did not take the witness Lease "
                            f"({failed}): nothing promoted, it watches again", "Normal")
            self._not_taken = why_not
            return "wait"
        self.took = True
        self.log(f"witness-guard: decision=promote (lease taken by {self.site}; running the failover steps)")
        self.notify("WitnessLeaseTaken", f"{self.site}'s guard took the witness Lease: {why}", "Normal")
        return self._run_failover()

    def _hold(self) -> None:
        """Keep the Lease this guard took renewed until its site's promoted leader renews it (its own guard, from
        the promotion on). The failover steps take seconds (fence first, catch up, promote): a Lease left
        unrenewed that long looks, to the other site's guard, like a leader gone quiet, and it takes the Lease
        back; the promotion under way is then refused by its pre_promote (drill auto-guard-killed: both sites
        fenced, no site leading for a minute)."""
        renew = self.ports.renew_lease
        if renew is None or (self._holding is not None and not self._holding.is_set()):
            return
        stop = self._holding = threading.Event()

        def keep() -> None:
            failed: str | None = None
            while not stop.wait(self.guard.timers.renew_every):
                try:
                    view = self.ports.read_lease()
                    if view.holder != self.site:
                        raise LeaseLost(f"the witness lease is {view.holder or 'nobody'}'s")
                    renew(view)
                    failed = None
                except LeaseLost as exc:
                    self.log(f"witness-guard: stops renewing the witness lease: {exc.message}")
                    return
                except RolegenError as exc:  # out of reach, or changed since read (a renewal): the next tick
                    if exc.message != failed:
                        self.log(f"witness-guard: lease renewal failed ({exc.message}); retrying")
                    failed = exc.message

        threading.Thread(target=keep, name="witness-lease-keeper", daemon=True).start()

    def _release(self) -> None:
        if self._holding is not None:
            self._holding.set()

    def _run_failover(self) -> str:
        self._hold()
        if self._failing is None:  # a re-run after the same error is no new decision
            self.notify("AutomaticFailoverStarted", f"running rolegen failover --to {self.site}'s steps", "Normal")
        try:
            self.ports.promote()
        except RolegenError as exc:
            self.log(f"witness-guard: failover stopped: {exc.message}" + (f" (hint: {exc.hint})" if exc.hint else ""))
            if exc.message != self._failing:
                self.notify("AutomaticFailoverStopped", f"the failover to {self.site} stopped: {exc.message}; the "
                            "guard holds the witness Lease and runs the steps again at its next look", "Warning")
            self._failing = exc.message
            return "error"
        self.promoted = True
        self._release()  # the promoted leader's own guard renews from here
        self._failing = None
        self.notify("AutomaticFailoverSucceeded", f"{self.site} leads: the failover steps completed", "Normal")
        return "promote"

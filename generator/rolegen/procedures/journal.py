"""What a role change leaves on the clusters for people: a Kubernetes Event on both sites for each of its steps
(rolegen.cluster.events) and, at its end, one history record on both sites (rolegen.cluster.history).

The procedures mark their moments (Pair.mark: the timings they always kept); a run's journal turns each known
mark into an Event, collects the facts the marks carry (the LSN and timeline at the gate, the timeline chosen)
and, when the run ends, writes the record: who, from where, verb, from -> to, outcome, timings, the
writes-unavailable window. Nothing here may fail or hold up a role change: Events are written in the
background, the record with a short timeout per site and both sites at once; any failure is one `warning:` line.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rolegen import __version__
from rolegen.cluster import events as kube_events
from rolegen.cluster.events import EventLog, EventType
from rolegen.cluster.history import append
from rolegen.cluster.kubectl import Cluster
from rolegen.cluster.pair import SitePair
from rolegen.cluster.records import RecordStore
from rolegen.errors import RolegenError

HISTORY_SECONDS = 5.0  # one site's history write at most (the run is over: it only delays the exit)
# The marks that change a site: before any of them, a run that stops refused (nothing was changed).
WRITES = frozenset({"demote_written", "demoted", "fenced", "witness_moved", "promote_written", "standby",
                    "streaming", "rolled_back"})


def _step(verb: str, mark: str, to: str, old: str) -> tuple[str, str] | None:
    """(reason, what happened) for a mark, None for a mark that is no step of its own (the rollback: its Event
    is the run's end)."""
    fenced = old if verb in ("switchover", "failover") else to  # failback and reseed fence the site they repair
    steps = {
        "demote_written": ("DemoteWritten", f"standby_cluster written to {old}'s DCS config"),
        "demoted": ("RoleChangeFenced", f"{old} fenced: no member accepts writes"),
        "fenced": ("RoleChangeFenced", f"{fenced} fenced: no member accepts writes"),
        "gate": ("LsnGatePassed", f"{to} replayed {old}'s final LSN"),
        "caught_up": (("CaughtUp", f"{to} streams and replayed what {old} sent") if verb == "reseed"
                      else ("LsnGatePassed", f"{to} replayed what {old} holds")),
        "witness_moved": ("WitnessLeaseMoved", f"witness Lease moved to {to}"),
        "promote_written": ("PromotionWritten", f"standby_cluster removed from {to}'s DCS config"),
        "promoted": ("Promoted", f"{to} reports leader"),
        "verified": ("Verified", f"{old} follows {to} as standby-leader"),
        "standby": ("Repaired", f"{to} is a standby of {old} again"),
        "streaming": ("Reseeded", f"{to} cloned again from {old} and streaming"),
    }
    return steps.get(mark)


def outcome_of(error: BaseException | None, marks: set[str]) -> str:
    """ok, rolled-back (promoted back after a gate not reached), refused (stopped before any write) or error."""
    if error is None:
        return "ok"
    if "rolled_back" in marks:
        return "rolled-back"
    if isinstance(error, RolegenError) and not marks & WRITES:
        return "refused"
    return "error"


def _who() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"  # centiseconds: runs are seconds apart


@dataclass
class Journal:
    """One role change's Events and history record. `pair.to` is the site promoted (re-seeded, for reseed)."""

    pair: SitePair
    verb: str
    log: Callable[[str], None]
    events: EventLog
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    host: str = field(default_factory=socket.gethostname)
    facts: dict[str, Any] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    finished: bool = False

    @classmethod
    def begin(cls, pair: SitePair, verb: str, log: Callable[[str], None]) -> Journal:
        host = socket.gethostname()
        events = EventLog([(pair.to, pair.cluster(pair.to)), (pair.other, pair.cluster(pair.other))], host, log)
        journal = cls(pair, verb, log, events, host=host)
        journal.emit("RoleChangeStarted", f"started by {_who()}@{host}")
        return journal

    @property
    def heading(self) -> str:
        return f"{self.verb} {self.pair.other.environment} -> {self.pair.to.environment}"

    def emit(self, reason: str, what: str, kind: EventType = "Normal") -> None:
        self.events.emit(reason, f"{self.heading}: {what}", kind)

    def step(self, mark: str, at: float) -> None:
        """A procedure's mark (Pair.mark): its Event, if it is a step; the gate's names the LSN noted for it."""
        self.marks[mark] = at
        found = _step(self.verb, mark, self.pair.to.environment, self.pair.other.environment)
        if found is not None:
            lsn = self.facts.get("lsn") if found[0] == "LsnGatePassed" else None
            extra = f" (LSN {lsn}, timeline {self.facts.get('timeline')})" if lsn is not None else ""
            self.emit(found[0], f"{found[1]}{extra}; at {at:.3f}s")

    def record(self, outcome: str, error: BaseException | None) -> dict[str, Any]:
        demoted, promoted = self.marks.get("demote_written"), self.marks.get("promoted")
        return {
            "started": _utc(self.started),
            "ended": _utc(datetime.now(UTC)),
            "verb": self.verb,
            "from": self.pair.other.environment,
            "to": self.pair.to.environment,
            "outcome": outcome,
            "error": None if error is None else (getattr(error, "message", None) or type(error).__name__),
            "who": _who(),
            "host": self.host,
            "rolegen": __version__,
            "lsn": self.facts.get("lsn"),
            "gate_timeline": self.facts.get("timeline"),
            "timeline": self.facts.get("new_timeline"),
            "writes_unavailable_s": (round(promoted - demoted, 3)
                                     if demoted is not None and promoted is not None else None),
            "timings": dict(self.marks),
        }

    def finish(self, error: BaseException | None = None) -> None:
        """The run's last Event and its history record on both sites; once. Never raises."""
        if self.finished:
            return
        self.finished = True
        began = time.monotonic()
        try:
            outcome = outcome_of(error, set(self.marks))
            what = "" if error is None else f": {getattr(error, 'message', None) or type(error).__name__}"
            reasons: dict[str, tuple[str, EventType]] = {
                "ok": ("RoleChangeSucceeded", "Normal"), "refused": ("Refused", "Warning"),
                "rolled-back": ("RolledBack", "Warning"), "error": ("RoleChangeFailed", "Warning")}
            reason, kind = reasons[outcome]
            self.emit(reason, f"{outcome}{what}", kind)
            self._write_history(self.record(outcome, error))
        except Exception as exc:  # the journal never fails a role change
            self.log(f"warning: the role-change journal failed: {exc}")
        # One budget for both: the Events still queued are written while the history is (a dead site costs its
        # short timeout once, not twice).
        left = self.events.close(max(0.5, kube_events.CLOSE_SECONDS - (time.monotonic() - began)))
        if left:
            self.log(f"warning: {left} Kubernetes Event(s) not written in time; the history holds the run")

    def _write_history(self, entry: dict[str, Any]) -> None:
        """The record on both sites at once, each within HISTORY_SECONDS (plus the client's own start)."""
        failures: dict[str, str] = {}

        def write(spec: Any) -> None:
            cluster = self.pair.cluster(spec)
            brief = cluster.brief(HISTORY_SECONDS) if isinstance(cluster, Cluster) else cluster
            try:
                append(RecordStore(spec, brief), entry)
            except Exception as exc:  # best effort, reported below
                failures[spec.environment] = getattr(exc, "message", None) or str(exc) or type(exc).__name__

        specs = (self.pair.to, self.pair.other)
        threads = [threading.Thread(target=write, args=(spec,), daemon=True) for spec in specs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=2 * HISTORY_SECONDS)  # an append: a read and a write
        for spec, thread in zip(specs, threads, strict=True):
            if thread.is_alive():
                self.log(f"warning: role-change history not written on {spec.environment} (no answer in time)")
            elif spec.environment in failures:
                self.log(f"warning: role-change history not written on {spec.environment} "
                         f"({failures[spec.environment]})")

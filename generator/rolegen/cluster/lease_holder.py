"""The role-change lease record (rolegen.cluster.lease): who holds it, told apart across containers and CI runners, and
what the record says (its stamp, fencing token and verdict).

Hostnames and PID numbers repeat between containers (every container may be `runner` with rolegen as PID 1), so a
holder is identified by hostname + boot id (/proc/sys/kernel/random/boot_id) + PID namespace
(readlink /proc/self/ns/pid) + PID + the process's start time (/proc/<pid>/stat field 22, clock ticks since boot).
A holder is "orphaned" (its lease taken over at once, without --force) only when the first three match ours,
so its PID means the same process table as ours, and that PID is gone or now names a process started at another
time (the number was reused). Where /proc is missing (not Linux), nothing is ever judged orphaned.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

DURATION = 30.0  # seconds a lease lasts after its last renewal


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        # The command name (field 2) may contain spaces and parentheses: count fields after its closing ")".
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def boottime() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended (CLOCK_BOOTTIME on Linux; elsewhere
    the monotonic clock, which may not): a lease's age must include a laptop's sleep."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return time.monotonic()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass(frozen=True)
class Holder:
    """Who takes the lease: `identity` is what people read, `key` tells processes apart across containers."""

    operation: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    user: str = field(default_factory=_user)
    boot: str | None = field(default_factory=boot_id)
    pidns: str | None = field(default_factory=pid_namespace)
    start: int | None = field(default_factory=lambda: start_time(os.getpid()))

    @property
    def identity(self) -> str:
        return f"{self.user}@{self.host}:{self.pid}"

    @property
    def key(self) -> str:
        return f"{self.identity}/{self.boot}/{self.pidns}/{self.start}"

    def fields(self) -> dict[str, Any]:
        return {"holder": self.identity, "key": self.key, "operation": self.operation, "host": self.host,
                "pid": self.pid, "boot": self.boot, "pidns": self.pidns, "start": self.start}


def orphaned(lease: dict[str, Any], me: Holder, start_of: Callable[[int], int | None] = start_time) -> bool:
    """The lease's holder ran in our PID namespace on this boot of this machine, and its process is gone (or
    its PID now names a process started at another time). Anything unknown means: not provably orphaned."""
    if me.boot is None or me.pidns is None:
        return False
    same_table = (lease.get("host"), lease.get("boot"), lease.get("pidns")) == (me.host, me.boot, me.pidns)
    pid = lease.get("pid")
    if not same_table or not isinstance(pid, int):
        return False
    now = start_of(pid)
    return now is None or (isinstance(lease.get("start"), int) and now != lease["start"])


def token_of(lease: dict[str, Any] | None) -> int:
    value = (lease or {}).get("token")
    return value if isinstance(value, int) else 0


def stamp(holder: Holder, now: datetime, acquired: str | None = None, token: int = 1,
          missing: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    record = {
        **holder.fields(),
        "token": token,
        "acquired": acquired or now.isoformat(timespec="seconds"),
        "renewed": now.isoformat(timespec="seconds"),
        "duration": DURATION,
    }
    if missing:  # a failover whose old site did not answer: others see that its lease is not held
        record["not_leased"] = sorted(missing)
    return record


def expires(lease: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(lease["renewed"])) + timedelta(seconds=float(lease["duration"]))
    except (KeyError, TypeError, ValueError):
        return None


Verdict = Literal["free", "mine", "orphaned", "expired", "held"]


def verdict(lease: dict[str, Any] | None, me: Holder, now: datetime,
            start_of: Callable[[int], int | None] = start_time) -> Verdict:
    """What the lease record says, before any watching: free, ours, orphaned (lease_holder.orphaned), expired by
    its own stamps (a takeover still needs --force and a watch), or held."""
    if not lease or not lease.get("holder"):
        return "free"
    if lease.get("key") == me.key:
        return "mine"
    if orphaned(lease, me, start_of):
        return "orphaned"
    end = expires(lease)
    if end is None or end < now:
        return "expired"
    return "held"


def describe(lease: dict[str, Any]) -> str:
    end = expires(lease)
    until = end.strftime("%Y-%m-%dT%H:%M:%SZ") if end else "?"
    return f"{lease.get('holder')} ({lease.get('operation')}) until {until} by its own clock"

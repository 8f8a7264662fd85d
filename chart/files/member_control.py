"""This member's pg_control, published on its own Pod as the annotation `rolegen.io/control` (JSON) the moment it
changes: the evidence that lets a switchover promote the other site as soon as this site's primary has shut down,
instead of after Patroni 4.1.5's demotion (two fixed one-second waits before it publishes anything).

- `state`: pg_control's "Database cluster state" (`in production`, `shut down`, `in archive recovery`, ...).
- `checkpoint`, `timeline`: the latest checkpoint's location and timeline. After a clean shutdown (`shut down`) the
  shutdown checkpoint is the last record the primary wrote: every commit lies before it.
- `patroni`: only with `shut down`: Patroni's own state word at that moment (its REST API, GET /patroni).
  `stopping` is Patroni stopping PostgreSQL for a demotion or its own exit, after which it never starts it as a
  primary again on the configuration it acted on; a restart reads `restarting`. Anything else (no answer, another
  word) is published as it is, and is no evidence for rolegen.
- `system`: the database system identifier.

The startup guard forks the watcher before it execs Patroni, so it lives and dies with the container. It looks at
the file's modification time every POLL seconds (a stat: nothing else runs while nothing changes), and reads it
with pg_controldata, which checks the CRC, only when it changed. A torn or unreadable read, an API not answering:
that round publishes nothing and the next tries again. A state is only ever missing or old, never made up.
Needs python3, PyYAML and pg_controldata: what a Patroni image has.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

ANNOTATION = "rolegen.io/control"
POLL = 0.05  # seconds between two looks at pg_control's modification time
# A file's mtime moves in clock ticks (milliseconds): two writes within one look alike, so for a while after a
# change every tick reads the file again (an idle shutdown checkpoint can follow its "shutting down" that fast).
RECHECK = 1.0
FIELDS = {
    "Database cluster state": "state",
    "Latest checkpoint location": "checkpoint",
    "Latest checkpoint's TimeLineID": "timeline",
    "Database system identifier": "system",
}


def parse(output: str) -> dict[str, Any]:
    """pg_controldata's output as the published fields; ValueError when a field is missing or the CRC is wrong
    (a read that raced a write of the file)."""
    if "CRC" in output and "WARNING" in output:
        raise ValueError("pg_control's CRC does not match (read while written)")
    found: dict[str, Any] = {}
    for line in output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in FIELDS:
            found[FIELDS[key.strip()]] = value.strip()
    missing = sorted(set(FIELDS.values()) - set(found))
    if missing:
        raise ValueError(f"pg_controldata printed no {', '.join(missing)}")
    found["timeline"] = int(found["timeline"])
    return found


class Watcher:
    """One look per tick: the file's (mtime, size); a read and, at a clean shutdown, Patroni's word, when it
    changed; a patch when what is published changed."""

    def __init__(self, stat: Callable[[], tuple[int, int]], controldata: Callable[[], str],
                 patroni_state: Callable[[], str | None], patch: Callable[[dict[str, Any]], None],
                 log: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.stat, self.controldata, self.patroni_state = stat, controldata, patroni_state
        self.patch, self.log, self.clock = patch, log, clock
        self.seen: tuple[int, int] | None = None
        self.recheck_until = float("-inf")
        self.published: dict[str, Any] | None = None
        self.failing: str | None = None

    def tick(self) -> None:
        try:
            stamp = self.stat()
        except OSError as exc:  # no data directory yet (a new member's base backup)
            self._failed(f"stat: {exc}")
            return
        now = self.clock()
        if stamp == self.seen and self.published is not None and now >= self.recheck_until:
            return
        try:
            control = parse(self.controldata())
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self._failed(f"read: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}")
            return
        # Asked at once: Patroni says `stopping` for about two seconds after the shutdown checkpoint.
        control["patroni"] = self.patroni_state() if control["state"] == "shut down" else None
        if control != self.published:
            try:
                self.patch({"metadata": {"annotations": {ANNOTATION: json.dumps(control, sort_keys=True)}}})
            except Exception as exc:  # the API may be away for a while: the next tick tries again
                self._failed(f"patch: {exc}")
                return
        if stamp != self.seen:
            self.recheck_until = now + RECHECK
        self.seen, self.published, self.failing = stamp, control, None

    def _failed(self, why: str) -> None:
        kind = why.split(":", 1)[0]
        if self.failing != kind:  # one line per kind of failure, not one per tick
            self.log(f"member-control: skipped ({why})")
        self.failing = kind


def rest_url(config: dict[str, Any], env: dict[str, str]) -> str:
    """Where this member's Patroni answers GET /patroni: its REST API's own address (the Pod's, or the lab's),
    https when it serves a certificate."""
    rest = config.get("restapi") or {}
    address = env.get("PATRONI_RESTAPI_CONNECT_ADDRESS") or rest.get("connect_address") or rest.get("listen", "")
    host, _, port = str(address).rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host
    scheme = "https" if rest.get("certfile") else "http"
    return f"{scheme}://{host}:{port or 8008}/patroni"


def patroni_asker(url: str) -> Callable[[], str | None]:
    # Our own Patroni, by its own address: only its state word is read, so its certificate's names are not checked.
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

    def ask() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as answer:
                body = json.loads(answer.read())
        except Exception:
            return None  # no answer is no evidence
        state = body.get("state") if isinstance(body, dict) else None
        return state if isinstance(state, str) else None

    return ask


def start(patroni_yml: str, request: Callable[[str, str, Any], Any]) -> int | None:
    """Fork the watcher (the child never returns); its pid, or None when ROLEGEN_CONTROL_REPORT is unset."""
    pod = os.environ.get("PATRONI_NAME")
    if os.environ.get("ROLEGEN_CONTROL_REPORT") != "1" or not pod:
        return None
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        # The container's first process is our parent (the guard, then Patroni after its exec): when it ends,
        # so do we (PR_SET_PDEATHSIG), as every process of a container does.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
        if os.getppid() != parent:  # the parent ended before the death signal was asked for
            return None
        import yaml  # a Patroni image has PyYAML (Patroni needs it)

        with open(patroni_yml) as handle:
            config = yaml.safe_load(handle)
        pg = config.get("postgresql") or {}
        data = os.environ.get("PATRONI_POSTGRESQL_DATA_DIR") or pg["data_dir"]
        binary = os.path.join(pg["bin_dir"], "pg_controldata") if pg.get("bin_dir") else "pg_controldata"
        namespace = (config.get("kubernetes") or {}).get("namespace") or "default"
        control_file = os.path.join(data, "global", "pg_control")
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

        def stat() -> tuple[int, int]:
            info = os.stat(control_file)
            return info.st_mtime_ns, info.st_size

        def controldata() -> str:
            return subprocess.run([binary, "-D", data], env=env, check=True, timeout=5, capture_output=True,
                                  text=True).stdout

        path = f"/api/v1/namespaces/{namespace}/pods/{pod}"
        watcher = Watcher(stat, controldata, patroni_asker(rest_url(config, dict(os.environ))),
                          lambda body: request("PATCH", path, body),
                          lambda line: print(line, file=sys.stderr, flush=True))
        while True:
            watcher.tick()
            time.sleep(POLL)
    except BaseException as exc:  # the watcher never takes the member down: it ends, Patroni runs on
        print(f"member-control: stopped ({exc!r})", file=sys.stderr, flush=True)
    finally:
        os._exit(0)

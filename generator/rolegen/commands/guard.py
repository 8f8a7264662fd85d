"""`rolegen guard --env SITE`: the standby site's witness guard, a long-running process (docs/witness.md). It serves
the leader guard's promise requests (`POST /promise`, reached through the tunnel), watches the witness Lease and
its own standby leader every `--every` seconds, and, when rolegen.witness.rules allows it, takes the Lease and
runs the failover steps (`promote`: the CLI hands in `rolegen failover`'s, since verbs do not import each other).

It runs only for a spec whose `witness.mode` is automatic. SIGTERM stops it (exit 0); a promotion does not: the
guard stays, holding nothing back, until it is stopped."""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rolegen.cluster.events import EventLog
from rolegen.cluster.health import not_streaming
from rolegen.cluster.kubectl import Cluster
from rolegen.cluster.pair import site_pair, witness_lease
from rolegen.cluster.site_state import read_site
from rolegen.errors import RolegenError, UsageError
from rolegen.offline.spec import Spec
from rolegen.offline.workspace import load_workspace
from rolegen.witness.lease import WitnessView
from rolegen.witness.standby import Notify, Ports, SiteView, StandbyLoop

Log = Callable[[str], None]


@dataclass(frozen=True)
class GuardResult:
    site: str
    decision: str  # the last one
    promoted: bool

    def lines(self) -> list[str]:
        return [f"guard of {self.site} stopped; last decision: {self.decision}"
                + ("; it promoted its site" if self.promoted else "")]

    def as_dict(self) -> dict[str, Any]:
        return {"site": self.site, "decision": self.decision, "promoted": self.promoted}


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT", hint="e.g. 0.0.0.0:8099, or 127.0.0.1:0")
    return host or "0.0.0.0", int(port)


def standby_loop(env_dir: Path, env: str, promote: Callable[[float], None], log: Log, *,
                 kubeconfig: Path | None = None) -> StandbyLoop:
    """The loop for `env`'s spec: its witness Lease, its own site, and `promote` (the failover steps; called with
    how long their waits for evidence may last: one request_timeout, since the rules are the evidence — no lease
    change for promote_after, a standby receiving nothing — and Patroni's promotion replays what it received)."""
    ws = load_workspace(env_dir)
    if env not in ws.specs:
        raise UsageError(f"no environment {env!r} in {env_dir}", hint=f"environments: {', '.join(sorted(ws.specs))}")
    spec = ws.specs[env]
    witness = spec.witness
    lease = witness_lease(spec, kubeconfig=kubeconfig)
    if witness is None or lease is None or not witness.automatic:
        raise RolegenError(f"{env}: witness.mode is not automatic", hint="declare `witness: {mode: automatic, ...}` "
                         "in both specs (docs/witness.md); every failover is manual until then")
    pair = site_pair(ws, env, kubeconfig=kubeconfig)
    cluster = pair.cluster(pair.to)

    def read_own() -> SiteView:
        state = read_site(spec, cluster)
        lead = state.leader_member
        if state.live_role != "standby-leader" or lead is None:
            return SiteView(False, None)  # no standby leader: nothing here receives (nor can be promoted)
        return SiteView(not_streaming(state) is None, lead.lsn, standby=True)

    def take(seen: WitnessView) -> WitnessView:
        return lease.take(env, seen)

    def declared() -> str:  # the roles in the guard's copy of the specs now (its failover records them there)
        return load_workspace(env_dir).specs[env].role

    def renew(seen: WitnessView) -> WitnessView:
        return lease.renew(env, seen, None)  # the leader's last published position stays: nothing newer here

    ports = Ports(read_lease=lease.read, read_site=read_own, take_lease=take,
                  promote=lambda: promote(witness.timers.request_timeout), renew_lease=renew, declared=declared)
    lag_limit = None if witness.replication == "sync" else witness.lag_limit
    return StandbyLoop(env, witness.timers, lag_limit, ports, log, notify=site_events(spec, cluster, log))


def site_events(spec: Spec, cluster: Cluster, log: Log) -> Notify:
    """The guard's decisions as Kubernetes Events on its own site's `<scope>-config` (its peer may be the site that
    is gone), written in the background; a write that fails is one log line and the next Event is tried anyway:
    the guard runs for months."""
    events = EventLog([(spec, cluster)], socket.gethostname(), log, sticky=False)

    def notify(reason: str, message: str, kind: str) -> None:
        events.emit(reason, message, "Warning" if kind == "Warning" else "Normal")

    return notify


def _handler(loop: StandbyLoop) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:  # one line per decision is the guard's log, not one per request
            pass

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, sort_keys=True).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path != "/promise":
                return self._answer(404, {"error": "not found"})
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer(200, {"granted": loop.grant()})

        def do_GET(self) -> None:
            ok = self.path == "/healthz"
            self._answer(200 if ok else 404, {"ok": True} if ok else {"error": "not found"})

    return Handler


@contextmanager
def _serving(loop: StandbyLoop, listen: tuple[str, int]) -> Iterator[ThreadingHTTPServer]:
    try:
        server = ThreadingHTTPServer(listen, _handler(loop))
    except OSError as exc:
        raise RolegenError(f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}",
                           hint="choose another --listen") from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def run(loop: StandbyLoop, listen: tuple[str, int], *, every: float = 1.0, stop: threading.Event | None = None,
        ready: Callable[[tuple[str, int]], None] | None = None) -> GuardResult:
    """Serve promises and decide every `every` seconds until `stop` is set (SIGTERM sets it)."""
    stop = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    decision = "wait"
    try:
        with _serving(loop, listen) as server:
            if ready is not None:
                host, port = server.server_address[:2]
                ready((str(host), int(port)))
            while not stop.is_set():
                decision = loop.step()
                stop.wait(every)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return GuardResult(loop.site, decision, loop.promoted)

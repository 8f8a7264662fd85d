#!/usr/bin/env python3
"""Startup guard: runs before Patroni in every member container, then execs Patroni (argv[1:]).

A site whose DCS config declares it leader (no standby_cluster) must not start accepting writes while its peer,
asked through the tunnel, is a writable primary: that is the silent second leader of an unplanned failover
whose old site came back on its own. In that case the guard fences its own site (adds standby_cluster -> peer
to the `config` annotation, guarded by resourceVersion) before Patroni starts, so Patroni comes up as a standby
leader and pg_rewinds from the peer.

Peer unreachable (tunnel down or peer dead: indistinguishable from here): the guard keeps asking every
RETRY_SECONDS for GUARD_UNREACHABLE_GRACE seconds (default 300) first, because the site that hosts the tunnel
often cold-starts before its tunnel: one failed attempt is no evidence the peer is gone. Past the grace,
GUARD_PEER_UNREACHABLE=start starts as the DCS config says (availability first; fencing then relies on rolegen
failover having written the config), =wait keeps retrying until the peer answers or the config gains
standby_cluster (safety first). Two facts let a member start without the peer, as neither adds a primary:
its site never bootstrapped (no `initialize`, no data here: a pair's first install, before the peer can
exist), or another member of its site holds the leader lock and renews it while the guard watches (this
member joins it as a replica). A peer that answers but refuses us (authentication, pg_hba, TLS) is not
"unreachable": the guard exits 1 at once and the Pod restarts with back-off until an operator fixes it. Each
decision is one line, `startup-guard: decision=...`; a run of retries with one outcome logs one line a minute.
Needs only what a Patroni image has: python3, PyYAML, psycopg (3) or psycopg2.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import yaml

SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def log(message: str) -> None:
    print(f"startup-guard: {message}", file=sys.stderr, flush=True)


def api() -> tuple[str, dict[str, str], ssl.SSLContext | None]:
    """API server URL, headers and TLS context: in-cluster service account, else the KUBECONFIG context."""
    if os.path.exists(f"{SA}/token"):
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        with open(f"{SA}/token") as handle:
            token = handle.read().strip()
        return f"https://{host}:{port}", {"Authorization": f"Bearer {token}"}, ssl.create_default_context(
            cafile=f"{SA}/ca.crt"
        )
    with open(os.environ["KUBECONFIG"]) as handle:
        config = yaml.safe_load(handle)
    name = os.environ.get("GUARD_CONTEXT") or config.get("current-context")
    context = next(c["context"] for c in config["contexts"] if c["name"] == name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    return cluster["server"], {}, None


def request(method: str, path: str, body: Any = None) -> Any:
    base, headers, tls = api()
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    if data is not None:
        req.add_header("Content-Type", "application/merge-patch+json")
    with urllib.request.urlopen(req, timeout=10, context=tls) as resp:
        return json.loads(resp.read())


# What a failed connection to the peer means. Only a network failure is "unreachable" (the tunnel is down or
# the peer is dead: indistinguishable from here); a refusal by the peer (authentication, pg_hba, TLS) proves the
# peer is there and our credentials or its rules are wrong: starting as leader then would be guessing.
_UNREACHABLE = ("could not connect", "connection refused", "timeout expired", "timed out", "could not translate host",
                "name or service not known", "no route to host", "network is unreachable",
                "server closed the connection unexpectedly", "connection reset", "temporary failure in name resolution")
_REFUSED = ("password authentication failed", "authentication failed", "no pg_hba.conf entry", "does not exist",
            "permission denied", "ssl", "certificate", "no password supplied")


def classify(error: str) -> str:
    """'refused' (the peer answered and said no), 'unreachable' (no answer), or 'error' (anything else)."""
    lowered = error.lower()
    if any(s in lowered for s in _REFUSED):
        return "refused"
    if any(s in lowered for s in _UNREACHABLE):
        return "unreachable"
    return "error"


def connect_kwargs(host: str, port: str) -> dict[str, str]:
    """Keyword arguments, never a `k='v'` string: the driver quotes a password with ' or \\ correctly.
    With TLS on (GUARD_SSLMODE), the peer is asked as Patroni's rewind connection asks it: verify-full (or
    verify-ca) against GUARD_SSLROOTCERT, presenting GUARD_SSLCERT/GUARD_SSLKEY when the pair wants a client
    certificate. A certificate the guard rejects is a refusal (exit 1), never "unreachable"."""
    kwargs = {"host": host, "port": port, "dbname": "postgres", "connect_timeout": "5",
              "user": os.environ.get("PATRONI_REWIND_USERNAME", ""),
              "password": os.environ.get("PATRONI_REWIND_PASSWORD", "")}
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        value = os.environ.get(f"GUARD_{key.upper()}")
        if value:
            kwargs[key] = value
    return kwargs


def peer_state(host: str, port: str) -> tuple[str, str]:
    """('primary' | 'standby' | 'unreachable' | 'refused' | 'error', detail) from the peer's database."""
    try:
        import psycopg

        connect: Any = psycopg.connect
    except ImportError:
        import psycopg2

        connect = psycopg2.connect
    try:
        conn = connect(**connect_kwargs(host, port))
    except Exception as exc:  # any driver's connection error
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return classify(detail), detail
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_is_in_recovery()")
        return ("standby" if cur.fetchone()[0] else "primary"), ""
    finally:
        conn.close()


RETRY_SECONDS = 5.0  # between attempts; an attempt itself takes up to connect_timeout (5 s)
LOG_EVERY = 60.0  # a run of attempts with one outcome logs one line this often, not one per attempt


def decide(dcs_standby: bool, peer: str, policy: str, unreachable_for: float = 0.0, grace: float = 0.0, *,
           site_leader_alive: bool = False, never_bootstrapped: bool = False) -> str:
    """start | fence | wait | fail — the whole policy, as a table:
    DCS declares standby -> start; peer standby -> start (as leader); peer primary -> fence;
    peer refused us or failed oddly -> fail (exit 1: the Pod restarts with back-off, visibly);
    peer unreachable -> start if that adds no primary (the site never bootstrapped, or its leader lock is held
    and renewed by another member), else wait until it has been unreachable for `grace` seconds, then `policy`
    (start: availability first; wait: safety first)."""
    if dcs_standby:
        return "start"
    if peer == "standby":
        return "start"
    if peer == "primary":
        return "fence"
    if peer == "unreachable":
        if never_bootstrapped or site_leader_alive:
            return "start"
        if unreachable_for < grace:
            return "wait"
        return "start" if policy == "start" else "wait"
    return "fail"


def decision(what: str, **facts: str) -> None:
    """One line per decision, the same shape every time: `grep 'startup-guard: decision='` finds them all."""
    log("decision=" + what + "".join(f" {k}={v!r}" if " " in v else f" {k}={v}" for k, v in facts.items()))


def never_bootstrapped(config_map: dict[str, Any], static: dict[str, Any]) -> bool:
    """True only on evidence that starting creates nothing to protect: no `initialize` in the DCS and no data
    directory here (a pair's first install: the peer cannot answer before this site runs)."""
    if (config_map["metadata"].get("annotations") or {}).get("initialize"):
        return False
    data_dir = str((static.get("postgresql") or {}).get("data_dir") or "")
    return bool(data_dir) and not os.path.exists(os.path.join(data_dir, "PG_VERSION"))


def leader_lock(path: str) -> tuple[str, str]:
    """(holder, resourceVersion) of this site's `<scope>-leader`; ("", "") when it does not exist."""
    try:
        obj = request("GET", path)
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        return "", ""
    return (obj["metadata"].get("annotations") or {}).get("leader") or "", obj["metadata"]["resourceVersion"]


def standby_extras() -> dict[str, Any]:
    """The spec's other standby_cluster keys (GUARD_STANDBY_EXTRAS, JSON: primary_slot_name with a DR slot), so a
    fenced site streams through its DR slot at once, as rolegen would write it. Unreadable: none (the fence
    matters more than the slot)."""
    try:
        extras = json.loads(os.environ.get("GUARD_STANDBY_EXTRAS") or "{}")
    except ValueError:
        extras = None
    if not isinstance(extras, dict):
        log("GUARD_STANDBY_EXTRAS is not a JSON object: fencing with host and port only")
        return {}
    return extras


def write_standby_cluster(path: str, cm: dict[str, Any], host: str, port: str) -> bool:
    """The site's fence: `standby_cluster -> host:port` (with the spec's other standby keys) in the DCS config read
    as `cm`, the rest kept, guarded by the resourceVersion read. False when the ConfigMap changed meanwhile (read it
    again); other errors raise. The witness guard fences through it too."""
    dynamic = json.loads((cm["metadata"].get("annotations") or {}).get("config") or "{}")
    dynamic["standby_cluster"] = {**standby_extras(), "host": host, "port": int(port)}
    text = json.dumps(dynamic, sort_keys=True, separators=(",", ":"))
    patch = {"metadata": {"resourceVersion": cm["metadata"]["resourceVersion"], "annotations": {"config": text}}}
    try:
        request("PATCH", path, patch)
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise
        return False
    return True


def guard(config_file: str, *, now: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> None:
    with open(config_file) as handle:
        static = yaml.safe_load(handle)
    namespace = static["kubernetes"]["namespace"]
    base = f"/api/v1/namespaces/{namespace}/configmaps/{static['scope']}"
    path = f"{base}-config"
    host, port = os.environ.get("GUARD_PEER_HOST"), os.environ.get("GUARD_PEER_PORT")
    policy = os.environ.get("GUARD_PEER_UNREACHABLE", "wait")
    grace = float(os.environ.get("GUARD_UNREACHABLE_GRACE", "300"))
    me = os.environ.get("PATRONI_NAME", "")
    if not host or not port:
        decision("start", reason="no peer configured")
        return
    peer_at = f"{host}:{port}"
    unreachable_since: float | None = None
    lock_seen: tuple[str, str] | None = None
    logged: tuple[str, float] | None = None  # (what was logged, when): one line per run of attempts
    attempts = 0
    while True:
        cm = request("GET", path)
        annotations = cm["metadata"].get("annotations") or {}
        dynamic = json.loads(annotations.get("config") or "{}")
        standby = bool(dynamic.get("standby_cluster"))
        state, detail = ("skipped", "") if standby else peer_state(host, port)
        attempts += 1
        alive = fresh = False
        if state == "unreachable":
            unreachable_since = now() if unreachable_since is None else unreachable_since
            fresh = never_bootstrapped(cm, static)
            # A lock is alive only if it changes while watched: one read may show a holder that died with its site.
            lock = leader_lock(f"{base}-leader")
            alive = bool(lock[0]) and lock[0] != me and lock_seen is not None and lock_seen != lock
            lock_seen = lock
        waited = 0.0 if unreachable_since is None else now() - unreachable_since
        what = decide(standby, state, policy, waited, grace, site_leader_alive=alive, never_bootstrapped=fresh)
        facts = {"dcs": "standby" if standby else "leader", "peer": peer_at, "peer_state": state}
        if detail:
            facts["detail"] = detail
        if what == "fence":
            if not write_standby_cluster(path, cm, host, port):
                continue  # changed meanwhile: look again
            decision("fence", **facts, reason="the peer is a writable primary: this site now follows it")
            return
        if what == "fail":
            decision("fail", **facts)
            raise SystemExit(1)
        if state == "unreachable":
            facts.update(attempts=str(attempts), unreachable_for=f"{waited:.0f}s", grace=f"{grace:.0f}s")
        if what == "start":
            if fresh:
                facts["reason"] = "this site never bootstrapped: nothing here to protect"
            elif alive and lock_seen:
                facts["reason"] = f"{lock_seen[0]} leads this site and renews its lock: joining it"
            decision("start", **facts, policy=policy)
            return
        step = "within the grace" if waited < grace else f"policy {policy}"
        if logged is None or logged[0] != step or now() - logged[1] >= LOG_EVERY:
            decision("wait", **facts, policy=policy, retry=f"{RETRY_SECONDS:.0f}s")
            logged, attempts = (step, now()), 0
        sleep(RETRY_SECONDS)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: startup-guard.py PATRONI_COMMAND... PATRONI_YML")
    command = sys.argv[1:]
    try:
        guard(command[-1])
    except Exception as exc:  # never start unguarded on an unexpected error: let the Pod restart and retry
        decision("fail", error=str(exc) or type(exc).__name__)
        sys.exit(1)
    if os.environ.get("ROLEGEN_FIGURES_EVERY"):
        try:  # the member's storage figures on its Pod (files/member_figures.py): never a reason not to start
            import member_figures

            member_figures.start(command[-1], request)
        except Exception as exc:
            log(f"member figures not started: {exc}")
    if os.environ.get("ROLEGEN_CONTROL_REPORT") == "1":
        try:  # pg_control on the Pod (files/member_control.py): never a reason not to start
            import member_control

            member_control.start(command[-1], request)
        except Exception as exc:
            log(f"member control report not started: {exc}")
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()

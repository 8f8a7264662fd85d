#!/usr/bin/env python3
"""Startup guard: runs before Patroni in every member container, then execs Patroni (argv[1:]).

A site whose DCS config declares it leader (no standby_cluster) must not start accepting writes while its peer,
asked through the tunnel, is a writable primary: that is the silent second leader of an unplanned failover
whose old site came back on its own. In that case the guard fences its own site (adds standby_cluster -> peer
to the `config` annotation, guarded by resourceVersion) before Patroni starts, so Patroni comes up as a standby
leader and pg_rewinds from the peer.

Peer unreachable (tunnel down or peer dead: indistinguishable from here): GUARD_PEER_UNREACHABLE=start starts
as the DCS config says (availability first; fencing then relies on rolegen failover having written the config),
=wait keeps retrying until the peer answers or the config gains standby_cluster (safety first). A peer that
answers but refuses us (authentication, pg_hba, TLS) is not "unreachable": the guard exits 1 and the Pod
restarts with back-off until an operator fixes it. Every decision is one line: `startup-guard: decision=...`.
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


def decide(dcs_standby: bool, peer: str, policy: str) -> str:
    """start | fence | wait | fail — the whole policy, as a table:
    DCS declares standby -> start; peer standby -> start (as leader); peer primary -> fence;
    peer refused us or failed oddly -> fail (exit 1: the Pod restarts with back-off, visibly);
    peer unreachable -> `policy` (start: availability first; wait: safety first)."""
    if dcs_standby:
        return "start"
    if peer == "standby":
        return "start"
    if peer == "primary":
        return "fence"
    if peer == "unreachable":
        return "start" if policy == "start" else "wait"
    return "fail"


def decision(what: str, **facts: str) -> None:
    """One line per decision, the same shape every time: `grep 'startup-guard: decision='` finds them all."""
    log("decision=" + what + "".join(f" {k}={v!r}" if " " in v else f" {k}={v}" for k, v in facts.items()))


def guard(config_file: str) -> None:
    with open(config_file) as handle:
        static = yaml.safe_load(handle)
    namespace = static["kubernetes"]["namespace"]
    path = f"/api/v1/namespaces/{namespace}/configmaps/{static['scope']}-config"
    host, port = os.environ.get("GUARD_PEER_HOST"), os.environ.get("GUARD_PEER_PORT")
    policy = os.environ.get("GUARD_PEER_UNREACHABLE", "start")
    if not host or not port:
        decision("start", reason="no peer configured")
        return
    peer_at = f"{host}:{port}"
    while True:
        cm = request("GET", path)
        annotations = cm["metadata"].get("annotations") or {}
        dynamic = json.loads(annotations.get("config") or "{}")
        standby = bool(dynamic.get("standby_cluster"))
        state, detail = ("skipped", "") if standby else peer_state(host, port)
        what = decide(standby, state, policy)
        facts = {"dcs": "standby" if standby else "leader", "peer": peer_at, "peer_state": state}
        if detail:
            facts["detail"] = detail
        if what == "fence":
            dynamic["standby_cluster"] = {"host": host, "port": int(port)}
            text = json.dumps(dynamic, sort_keys=True, separators=(",", ":"))
            version = cm["metadata"]["resourceVersion"]
            patch = {"metadata": {"resourceVersion": version, "annotations": {"config": text}}}
            try:
                request("PATCH", path, patch)
            except urllib.error.HTTPError as exc:
                if exc.code != 409:
                    raise
                continue  # changed meanwhile: look again
            decision("fence", **facts, reason="the peer is a writable primary: this site now follows it")
            return
        if what == "start":
            decision("start", **facts, policy=policy)
            return
        if what == "fail":
            decision("fail", **facts)
            raise SystemExit(1)
        decision("wait", **facts, policy=policy, retry="5s")
        time.sleep(5)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: startup-guard.py PATRONI_COMMAND... PATRONI_YML")
    command = sys.argv[1:]
    try:
        guard(command[-1])
    except Exception as exc:  # never start unguarded on an unexpected error: let the Pod restart and retry
        decision("fail", error=str(exc) or type(exc).__name__)
        sys.exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()

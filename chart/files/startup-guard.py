#!/usr/bin/env python3
"""Startup guard: runs before Patroni in every member container, then execs Patroni (argv[1:]).

A site whose DCS config declares it leader (no standby_cluster) must not start accepting writes while its peer,
asked through the tunnel, is a writable primary: that is the silent second leader of an unplanned failover
whose old site came back on its own. In that case the guard fences its own site (adds standby_cluster -> peer
to the `config` annotation, guarded by resourceVersion) before Patroni starts, so Patroni comes up as a standby
leader and pg_rewinds from the peer.

Peer unreachable (tunnel down or peer dead: indistinguishable from here): GUARD_PEER_UNREACHABLE=start starts
as the DCS config says (availability first; fencing then relies on rolegen failover having written the config),
=wait keeps retrying until the peer answers or the config gains standby_cluster (safety first).
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


def peer_is_primary(host: str, port: str) -> bool | None:
    """True/False from the peer's database; None if it cannot be asked."""
    dsn = dict(host=host, port=port, dbname="postgres", connect_timeout="5",
               user=os.environ.get("PATRONI_REWIND_USERNAME", ""), password=os.environ.get("PATRONI_REWIND_PASSWORD", ""))
    try:
        import psycopg

        connect: Any = psycopg.connect
    except ImportError:
        import psycopg2

        connect = psycopg2.connect
    try:
        conn = connect(" ".join(f"{k}='{v}'" for k, v in dsn.items()))
    except Exception as exc:  # any driver's connection error
        log(f"peer {host}:{port} unreachable: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}")
        return None
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_is_in_recovery()")
        return not cur.fetchone()[0]
    finally:
        conn.close()


def guard(config_file: str) -> None:
    with open(config_file) as handle:
        static = yaml.safe_load(handle)
    namespace = static["kubernetes"]["namespace"]
    path = f"/api/v1/namespaces/{namespace}/configmaps/{static['scope']}-config"
    host, port = os.environ.get("GUARD_PEER_HOST"), os.environ.get("GUARD_PEER_PORT")
    policy = os.environ.get("GUARD_PEER_UNREACHABLE", "start")
    if not host or not port:
        log("no peer configured: nothing to guard")
        return
    while True:
        cm = request("GET", path)
        annotations = cm["metadata"].get("annotations") or {}
        dynamic = json.loads(annotations.get("config") or "{}")
        if dynamic.get("standby_cluster"):
            log("DCS config declares a standby cluster: starting")
            return
        primary = peer_is_primary(host, port)
        if primary is False:
            log(f"peer {host}:{port} is a standby: starting as leader")
            return
        if primary is True:
            dynamic["standby_cluster"] = {"host": host, "port": int(port)}
            patch = {"metadata": {"resourceVersion": cm["metadata"]["resourceVersion"],
                                  "annotations": {"config": json.dumps(dynamic, sort_keys=True, separators=(",", ":"))}}}
            try:
                request("PATCH", path, patch)
            except urllib.error.HTTPError as exc:
                if exc.code != 409:
                    raise
                continue  # changed meanwhile: look again
            log(f"FENCED: peer {host}:{port} is a writable primary; this site now follows it as a standby")
            return
        if policy == "start":
            log("peer unreachable and policy 'start': starting as the DCS config says")
            return
        log("peer unreachable and policy 'wait': retrying in 5s")
        time.sleep(5)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: startup-guard.py PATRONI_COMMAND... PATRONI_YML")
    command = sys.argv[1:]
    try:
        guard(command[-1])
    except Exception as exc:  # never start unguarded on an unexpected error: let the Pod restart and retry
        log(f"error: {exc}")
        sys.exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()

"""The witness guard's links (witness-guard.py, beside it in the container): its configuration from the
environment, and its two requests, the witness Lease's renewal and the standby guard's promise. Each counts from
when its request was sent, and only a success within request_timeout counts. Needs only python3 (stdlib)."""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from witness_rules import Timers

LSN = "rolegen.io/lsn"
SYNCHRONOUS = "rolegen.io/synchronous"  # replication sync: "true" only while the peer confirms every commit


class LeaseLost(Exception):
    """The witness Lease names another holder: the standby site took it to promote."""


@dataclass(frozen=True)
class Config:
    site: str
    timers: Timers
    witness: str  # API server URL
    lease_path: str
    token: str | None
    ca_file: str | None
    client_cert: tuple[str, str] | None  # tls.crt, tls.key: a client certificate instead of a token
    promise_url: str | None
    patroni_url: str
    fence_write_for: float
    stall_after: float  # partners silent this long: commits stall until one answers (default: one failed round)
    sync_standbys: frozenset[str]  # replication sync: the peer's member names (empty: async)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Config:
        creds = env.get("WITNESS_CREDENTIALS", "/etc/rolegen-witness")

        def read(name: str) -> str | None:
            path = os.path.join(creds, name)
            if not os.path.exists(path):
                return None
            with open(path) as handle:
                return handle.read().strip()

        names = ("fence_after", "margin", "renew_every", "request_timeout")
        timers = Timers(**{k: float(env[f"WITNESS_{k.upper()}"]) for k in names if f"WITNESS_{k.upper()}" in env})
        server = env.get("WITNESS_SERVER") or read("server") or ""
        return cls(
            site=env["WITNESS_SITE"], timers=timers, witness=server.rstrip("/"),
            lease_path=f"/apis/coordination.k8s.io/v1/namespaces/{env['WITNESS_NAMESPACE']}/leases/"
                       f"{env['WITNESS_LEASE']}",
            token=read("token"), ca_file=(os.path.join(creds, "ca.crt") if read("ca.crt") else None),
            client_cert=((os.path.join(creds, "tls.crt"), os.path.join(creds, "tls.key"))
                         if read("tls.crt") and read("tls.key") else None),
            promise_url=env.get("WITNESS_PROMISE_URL") or None,
            patroni_url=env.get("WITNESS_PATRONI_URL", "http://127.0.0.1:8008"),
            fence_write_for=float(env.get("WITNESS_FENCE_WRITE_FOR", "60")),
            stall_after=float(env.get("WITNESS_STALL_AFTER", timers.renew_every + timers.request_timeout)),
            sync_standbys=frozenset(n for n in env.get("WITNESS_SYNC_STANDBYS", "").split(",") if n)
            if env.get("WITNESS_REPLICATION") == "sync" else frozenset(),
        )


def http(method: str, url: str, body: Any, timeout: float, *, token: str | None = None,
          ca_file: str | None = None, client_cert: tuple[str, str] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    tls = ssl.create_default_context(cafile=ca_file) if url.startswith("https") else None
    if tls is not None and url.startswith("https://127.0.0.1"):
        # Patroni's own REST API over loopback inside the Pod: its certificate names the member, not 127.0.0.1.
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    if tls is not None and client_cert is not None:
        tls.load_cert_chain(*client_cert)
    with urllib.request.urlopen(req, timeout=timeout, context=tls) as resp:
        return json.loads(resp.read() or b"null")


class Links:
    """The guard's two requests. Each returns when it was sent if it succeeded within request_timeout, else None."""

    def __init__(self, config: Config, now: Callable[[], float] = time.monotonic) -> None:
        self.config, self.now = config, now

    def _witness(self, method: str, body: Any = None, path: str = "") -> Any:
        c = self.config
        return http(method, c.witness + (path or c.lease_path), body, c.timers.request_timeout, token=c.token,
                     ca_file=c.ca_file, client_cert=c.client_cert)

    def renew(self, lsn: int | None, synchronous: bool | None = None) -> float | None:
        """Renew (or create, if absent) the Lease for this site. Raises LeaseLost if another site holds it.
        `synchronous` (replication sync): whether every commit acknowledged so far is on the peer. A Conflict is
        read again (up to three times): a renewal by this same site in between (its standby guard keeping the
        Lease it took, while this member's pre_promote asks) is no sign of anything; a takeover shows at the
        read as another holder (bench, auto-guard-killed: that conflict once refused the standby site's promotion)."""
        for _ in range(3):
            sent, conflict = self._renew_once(lsn, synchronous)
            if not conflict:
                return sent
        return None

    def _renew_once(self, lsn: int | None, synchronous: bool | None) -> tuple[float | None, bool]:
        """(when the renewal that landed was sent, or None; whether it met a Conflict)."""
        c = self.config
        try:
            lease = self._witness("GET")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                return None, False
            lease = None
        except (urllib.error.URLError, OSError, ValueError):  # unreachable, reset, timed out: no renewal
            return None, False
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # for people: never compared with a clock
        # Unknown (Patroni did not answer): published as such, never a stale position the lag limit would trust.
        annotations = {LSN: "" if lsn is None else str(lsn)}
        if synchronous is not None:
            annotations[SYNCHRONOUS] = "true" if synchronous else "false"
        if lease is None:
            name = c.lease_path.rsplit("/", 1)[1]
            body: dict[str, Any] = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                    "metadata": {"name": name, "annotations": annotations},
                                    "spec": {"holderIdentity": c.site, "renewTime": stamp, "acquireTime": stamp,
                                             "leaseDurationSeconds": int(c.timers.fence_after)}}
            method, path = "POST", c.lease_path.rsplit("/", 1)[0]
        else:
            holder = (lease.get("spec") or {}).get("holderIdentity")
            if holder and holder != c.site:
                raise LeaseLost(holder)
            lease.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
            lease.setdefault("spec", {}).update(holderIdentity=c.site, renewTime=stamp)
            body, method, path = lease, "PUT", ""  # carries the resourceVersion read: a takeover makes it 409
        sent = self.now()
        try:
            self._witness(method, body, path)
        except urllib.error.HTTPError as exc:  # a 409 counts for nothing, but may be read again
            return None, exc.code == 409
        except (urllib.error.URLError, OSError, ValueError):
            return None, False
        return (sent if self.now() - sent < c.timers.request_timeout else None), False

    def promise(self) -> float | None:
        c = self.config
        if not c.promise_url:
            return None
        sent = self.now()
        try:
            answer = http("POST", f"{c.promise_url.rstrip('/')}/promise", {"site": c.site},
                           c.timers.request_timeout)
        except (urllib.error.URLError, OSError, ValueError):
            return None
        granted = isinstance(answer, dict) and answer.get("granted") is True
        return sent if granted and self.now() - sent < c.timers.request_timeout else None

    def both(self, lsn: int | None, synchronous: bool | None = None, witness_enough: bool = False
             ) -> tuple[float | None, float | None, str | None]:
        """Both requests at once; (witness sent, promise sent, the other holder if the Lease is lost).
        `witness_enough`: once the renewal landed (or met another holder), the promise is not waited for: a
        promotion needs the Lease, and a peer guard that does not answer (its site lost) costs request_timeout."""
        out: dict[str, Any] = {}

        def witness() -> None:
            try:
                out["w"] = self.renew(lsn, synchronous)
            except LeaseLost as exc:
                out["lost"] = str(exc)

        renewal = threading.Thread(target=witness)
        promise = threading.Thread(target=lambda: out.update(p=self.promise()), daemon=witness_enough)
        for t in (renewal, promise):
            t.start()
        renewal.join()
        if not (witness_enough and (out.get("w") is not None or "lost" in out)):
            promise.join()
        return out.get("w"), out.get("p"), out.get("lost")

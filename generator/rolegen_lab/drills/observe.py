"""What a drill watches, independently of rolegen: every member's writability (a prober polling each PostgreSQL
directly), the timelines each member's log says it selected, and each site's live role (Patroni's REST API and
the `<release>-master` endpoint), from the connection details the lab hands out (`Lab.info()`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from rolegen.cluster.site_state import rolegen_role
from rolegen_lab.drills.report import timelines_selected

Conn = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class Endpoints:
    """Addresses of one running lab, from `Lab.info()` (in-process or through the control socket)."""

    info: dict[str, Any]

    @property
    def sites(self) -> list[str]:
        return sorted(self.info["sites"])

    def _dsn(self, host: str, port: int | str) -> str:
        su = self.info["superuser"]
        return f"host={host} port={port} dbname=postgres user={su['username']} password={su['password']} " \
               "connect_timeout=2"

    def master_dsn(self, site: str) -> str:
        host, port = self.info["sites"][site]["master"].rsplit(":", 1)
        return self._dsn(host, port)

    def members(self, site: str) -> dict[str, dict[str, Any]]:
        members: dict[str, dict[str, Any]] = self.info["sites"][site]["members"]
        return members

    def member_dsns(self) -> dict[str, str]:
        """`site/member` -> DSN of that member's own PostgreSQL (not through any proxy)."""
        return {
            f"{s}/{m}": self._dsn("127.0.0.1", v["postgres"]) for s in self.sites for m, v in self.members(s).items()
        }

    @property
    def baseline(self) -> str:
        """The site the lab came up leading (its source specs' leader): where a drill series returns between runs."""
        baseline = self.info.get("baseline")
        if not baseline:
            from rolegen.errors import RolegenError

            raise RolegenError("the lab names no baseline (no site led when it came up)",
                               hint="rolegen lab down && rolegen lab up")
        return str(baseline)

    @property
    def env_dir(self) -> Path:
        return Path(self.info["environments"])

    @property
    def kubeconfig(self) -> Path:
        """The operator's (rolegen runs): through the lab's API proxies, so operator-side faults reach them."""
        return Path(self.info["kubeconfig"])

    @property
    def observer_kubeconfig(self) -> Path:
        """Straight to the API servers: the drill's own observations, which operator-side faults never touch."""
        return Path(self.info.get("kubeconfig_direct") or self.info["kubeconfig"])


class LogWatch:
    """Remembers where each member's log ended when the drill started; reports timelines selected since."""

    def __init__(self, endpoints: Endpoints) -> None:
        self._endpoints = endpoints
        self._start = {(s, m): _size(Path(v["log"])) for s in endpoints.sites for m, v in endpoints.members(s).items()}

    def timelines(self) -> dict[str, list[tuple[str, int]]]:
        selected: dict[str, list[tuple[str, int]]] = {}
        for (site, member), offset in sorted(self._start.items()):
            selected.setdefault(site, [])
            path = self._path(site, member)
            with contextlib.suppress(OSError), open(path, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
                selected[site] += [(member, tl) for tl in timelines_selected(text)]
        return selected

    def _path(self, site: str, member: str) -> Path:
        return Path(self._endpoints.members(site)[member]["log"])


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class Prober:
    """Polls every member's PostgreSQL for `pg_is_in_recovery()`. When two answer "primary" in one round, the
    first one is asked again after the second answered: still primary means both were writable at the moment
    the second answered (a primary does not demote and re-promote within a probe), so a sampling artefact of a
    clean handover (old demoted before new promoted) is never reported, and a real overlap always is."""

    def __init__(self, dsns: dict[str, str], every: float = 0.2) -> None:
        self._dsns, self._every = dsns, every
        self._conns: dict[str, Conn] = {}
        self.dual: list[tuple[float, list[str]]] = []
        self.probes = 0
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-prober", daemon=True)

    def start(self, t0: float) -> Prober:
        self._t0 = t0
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for conn in self._conns.values():
            conn.close()

    def _primary(self, name: str) -> bool:
        self.probes += 1
        try:
            conn = self._conns.get(name)
            if conn is None or conn.closed:
                conn = self._conns[name] = psycopg.connect(self._dsns[name], autocommit=True)
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            return row is not None and row[0] is False
        except psycopg.Error:
            bad = self._conns.pop(name, None)
            if bad is not None:
                bad.close()
            return False

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            writable = [name for name in sorted(self._dsns) if self._primary(name)]
            self.round(time.monotonic() - self._t0, writable)
            if len(writable) > 1 and self._primary(writable[0]):
                self.dual.append((time.monotonic() - self._t0, writable))

    def round(self, at: float, writable: list[str]) -> None:
        """One round's writable members, `at` seconds from the start (what a subclass keeps)."""


def patroni_states(endpoints: Endpoints, site: str) -> dict[str, dict[str, Any]]:
    """Each member's Patroni `/patroni` document ({} when it does not answer)."""
    states = {}
    for member, ports in endpoints.members(site).items():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['rest']}/patroni", timeout=1) as resp:
                states[member] = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            with contextlib.suppress(ValueError):
                states[member] = json.loads(exc.read() or b"{}")
            exc.close()
        except (OSError, ValueError):
            states[member] = {}
    return states


def patroni_lead(states: dict[str, dict[str, Any]]) -> tuple[str | None, int | None, bool]:
    """(leader | standby-leader | None, its timeline, streaming) of a site's leading member, as Patroni's REST API
    reports it (not rolegen's SiteState.live_role, which reads the API objects)."""
    for state in states.values():
        role = rolegen_role(state.get("role"))
        if role == "leader":
            return "leader", state.get("timeline"), False
        if role == "standby-leader":
            streaming = "streaming" in (state.get("replication_state"), state.get("state"))
            return "standby-leader", state.get("timeline"), streaming
    return None, None, False


def master_writable(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            return row is not None and row[0] is False
    except psycopg.Error:
        return False

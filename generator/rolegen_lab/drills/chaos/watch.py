"""What chaos watches besides the drills' observers: every prober round's writable members (proof that a site
held a healthy copy at a moment), and each site's PersistentVolumeClaims as the API lists them (a claim that
disappears was deleted: the lab's provisioner wipes its volume)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rolegen.cluster.kubectl import cluster_for
from rolegen.errors import RolegenError
from rolegen.offline.workspace import load_workspace
from rolegen_lab.drills.chaos.checker import PvcDeletion
from rolegen_lab.drills.observe import Endpoints, Prober


class RoundProber(Prober):
    """The drills' prober, also keeping each round's writable members (`site/member`)."""

    def __init__(self, dsns: dict[str, str], every: float = 0.2) -> None:
        super().__init__(dsns, every)
        self.rounds: list[tuple[float, list[str]]] = []

    def round(self, at: float, writable: list[str]) -> None:
        if writable:
            self.rounds.append((at, writable))


class PvcWatch:
    """Lists each site's PVCs every `every` seconds through kubectl (a site whose API does not answer is skipped:
    its claims are compared again once it answers)."""

    def __init__(self, endpoints: Endpoints, every: float = 1.0) -> None:
        self._ep, self._every = endpoints, every
        self.deletions: list[PvcDeletion] = []
        self._seen: dict[str, tuple[float, dict[str, str]]] = {}  # site -> (when, uid -> name)
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        # One thread per site: a lost site's API (kubectl waiting for its timeout) must not blind the other.
        self._threads = [threading.Thread(target=self._run, args=(site,), name=f"chaos-pvc-{site}", daemon=True)
                         for site in endpoints.sites]

    def start(self, t0: float) -> PvcWatch:
        self._t0 = t0
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def poll(self, site: str) -> None:
        spec = load_workspace(self._ep.env_dir).specs[site]
        cluster = cluster_for(spec, self._ep.kubeconfig, cache_dir=Path(self._ep.info["root"]) / "kube-cache")
        try:
            claims = {c["metadata"]["uid"]: c["metadata"]["name"] for c in cluster.list("persistentvolumeclaims")}
        except RolegenError:
            return
        now = time.monotonic() - self._t0
        if site in self._seen:
            last, before = self._seen[site]
            self.deletions += [PvcDeletion(site, name, last, now) for uid, name in sorted(before.items())
                               if uid not in claims]
        self._seen[site] = (now, claims)

    def _run(self, site: str) -> None:
        while not self._stop.is_set():
            self.poll(site)
            self._stop.wait(self._every)

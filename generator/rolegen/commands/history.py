"""`rolegen history`: the role changes recorded on the clusters (rolegen.cluster.history), read from every site
of the workspace and merged: the same change recorded on both sites is shown once, with the sites that hold it.
A site that cannot be read is shown as unreadable, never as an empty history."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.cluster import history
from rolegen.cluster.history import SiteHistory
from rolegen.cluster.kubectl import ClusterError
from rolegen.cluster.pair import SitePair, site_pair
from rolegen.cluster.records import records_map
from rolegen.offline.spec import Spec
from rolegen.offline.workspace import load_workspace


@dataclass(frozen=True)
class HistoryResult:
    sites: tuple[SiteHistory, ...]
    records: tuple[dict[str, Any], ...]

    @property
    def ok(self) -> bool:
        """At least one site was read."""
        return any(site.error is None for site in self.sites)

    def lines(self) -> list[str]:
        out = []
        for site in self.sites:
            held = f"{len(site.entries)} record(s)" if site.error is None else f"UNREADABLE: {site.error}"
            out.append(f"{site.environment}: {held}")
        if not self.records:
            read = [s.environment for s in self.sites if s.error is None]
            out.append(f"no role change recorded on {', '.join(read)}" if read else "no site could be read")
        for entry in self.records:
            out.append(_line(entry))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "sites": {s.environment: {"read": s.error is None, "error": s.error, "records": len(s.entries)}
                      for s in self.sites},
            "history": list(self.records),
        }


def _line(entry: dict[str, Any]) -> str:
    parts = [str(entry.get("started")), f"{entry.get('verb')} {entry.get('from')} -> {entry.get('to')}",
             str(entry.get("outcome"))]
    if entry.get("lsn") is not None:
        parts.append(f"LSN {entry['lsn']} tl {entry.get('gate_timeline')}")
    if entry.get("timeline") is not None:
        parts.append(f"new tl {entry['timeline']}")
    if entry.get("writes_unavailable_s") is not None:
        parts.append(f"writes unavailable {entry['writes_unavailable_s']}s")
    parts.append(f"by {entry.get('who')}@{entry.get('host')} (rolegen {entry.get('rolegen')})")
    parts.append(f"on {', '.join(entry.get('sites') or [])}")
    line = "  ".join(parts)
    return f"{line}\n    error: {entry['error']}" if entry.get("error") else line


def _read(pair: SitePair, spec: Spec) -> SiteHistory:
    try:
        return SiteHistory(spec.environment, tuple(history.read(pair.store(spec))))
    except ClusterError as exc:
        return SiteHistory(spec.environment, error=f"{records_map(spec)}: {exc.message}")


def run(env_dir: Path, kubeconfig: Path | None = None) -> HistoryResult:
    ws = load_workspace(env_dir)
    pairs: dict[str, SitePair] = {}
    for name in sorted(ws.specs):  # one site pair per pair of peers, built as status builds it
        if name not in pairs:
            pair = site_pair(ws, name, kubeconfig=kubeconfig)
            pairs |= {pair.to.environment: pair, pair.other.environment: pair}
    names = sorted(ws.specs)
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        sites = tuple(pool.map(lambda n: _read(pairs[n], ws.specs[n]), names))
    return HistoryResult(sites, tuple(history.merge(list(sites))))

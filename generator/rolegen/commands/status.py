"""`rolegen status`: both sites side by side, from API objects only (no exec into Pods)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.kube import Cluster, ClusterUnreachable
from rolegen.live import SiteState, read_site
from rolegen.workspace import load_workspace


@dataclass
class SiteStatus:
    environment: str
    declared: str
    context: str | None
    state: SiteState | None  # None: API unreachable
    error: str | None = None

    @property
    def fence_pending(self) -> bool:
        """Declared standby, but the live DCS config still lets it lead (or cannot be checked)."""
        return self.declared == "standby-leader" and (self.state is None or self.state.dcs_role == "leader")

    def as_dict(self) -> dict[str, Any]:
        live = self.state.as_dict() if self.state else {"error": self.error}
        return {
            "environment": self.environment,
            "declared": self.declared,
            "context": self.context,
            "fence_pending": self.fence_pending,
            **live,
        }


@dataclass
class StatusResult:
    sites: list[SiteStatus]

    @property
    def same_system_id(self) -> bool | None:
        ids = {s.state.initialize for s in self.sites if s.state and s.state.initialize}
        return None if len(ids) == 0 else len(ids) == 1

    @property
    def lag_bytes(self) -> int | None:
        leaders = [s.state.leader_member for s in self.sites if s.state and s.state.live_role == "leader"]
        standbys = [s.state.leader_member for s in self.sites if s.state and s.state.live_role == "standby-leader"]
        if len(leaders) != 1 or len(standbys) != 1 or not leaders[0] or not standbys[0]:
            return None
        if leaders[0].lsn is None or standbys[0].replay_lsn is None:
            return None
        return max(leaders[0].lsn - standbys[0].replay_lsn, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sites": [s.as_dict() for s in self.sites],
            "same_system_id": self.same_system_id,
            "lag_bytes": self.lag_bytes,
        }

    def lines(self) -> list[str]:
        out = []
        for site in self.sites:
            head = f"{site.environment} (context {site.context or '-'}): declared {site.declared}"
            if site.state is None:
                out.append(f"{head}; UNREACHABLE: {site.error}")
            else:
                st = site.state
                mismatch = "" if st.live_role in (None, site.declared) else "  <-- differs from declared"
                out.append(f"{head}; DCS config {st.dcs_role}; Patroni reports {st.live_role or 'no leader'}{mismatch}")
                for m in st.members:
                    lsn = m.replay_lsn if m.role != "leader" and m.replay_lsn is not None else m.lsn
                    out.append(
                        f"  {m.name:20} {m.role or '-':15} {m.state or '-':10} tl {m.timeline or '-'}  lsn {lsn or '-'}"
                    )
            if site.fence_pending:
                out.append(f"  FENCE PENDING: {site.environment} must get standby_cluster before its members lead")
        same = self.same_system_id
        out.append("system id: " + {None: "unknown", True: "equal on both sites", False: "DIFFERS"}[same])
        if self.lag_bytes is not None:
            out.append(f"standby replay lag: {self.lag_bytes} bytes")
        return out


def run(env_dir: Path, kubeconfig: Path | None = None) -> StatusResult:
    specs = load_workspace(env_dir).specs
    sites = []
    for name, spec in sorted(specs.items()):
        cluster = Cluster(spec.namespace, spec.context, kubeconfig)
        try:
            sites.append(SiteStatus(name, spec.role, spec.context, read_site(spec, cluster)))
        except ClusterUnreachable as exc:
            sites.append(SiteStatus(name, spec.role, spec.context, None, exc.message))
    return StatusResult(sites)

"""How one live site differs from its rendered environment, and what `diff` and `apply` must write to converge it.

The comparison itself is pure (`compare`, via deepdiff: every difference, secret-looking values redacted;
`keep_extra`, from rolegen.cluster.dcs_write: the declared `config` plus hand-set keys), and so is `plan_site`: it
gets the snapshots handed in. Sections of a difference: `release` (the Helm release is missing), `values`
(rendered Helm values vs the release's user-supplied values), `config` (the rendered DCS config vs the live
`config` annotation, compared semantically: Patroni rewrites it in its own key order) and `role` (the role
Patroni reports vs the declared one). Patroni's own annotations are carried along for display only.

`read_plan` is the one function here that reads a cluster: it takes the snapshots (in the order that gives the
clearest error: kubectl first, whose failure names the context, then the Helm release) and plans from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from deepdiff import DeepDiff

from rolegen.cluster.dcs_write import ROLE_OWNED as ROLE_OWNED  # re-exported: its home is the guarded write
from rolegen.cluster.dcs_write import keep_extra as keep_extra
from rolegen.cluster.dependents import DependentState
from rolegen.cluster.helm import ReleaseInfo, Releases
from rolegen.cluster.kubectl import Cluster
from rolegen.cluster.site_state import PATRONI_OWNED, SiteState, read_site
from rolegen.offline.render import Rendered, dcs_config, dumps_json, render
from rolegen.offline.spec import Spec
from rolegen.package_data import chart_defaults

_SECRETISH = re.compile(r"(?i)^(.*[_-])?(passw(or)?d|secret|token|private[_-]?key|passphrase)$")
REDACTED = "<redacted>"


@dataclass(frozen=True, order=True)
class Difference:
    section: str  # values | config | role | release
    path: str  # JSON path inside the section, e.g. $.postgresql.parameters.max_connections
    kind: str  # changed | missing (declared, not live) | extra (live only)
    live: Any
    declared: Any
    drift: bool = True  # False: shown, but neither counted nor changed (hand-set extra keys)

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "path": self.path,
            "kind": self.kind,
            "live": self.live,
            "declared": self.declared,
            "drift": self.drift,
        }


def _json_path(parts: list[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _redact(parts: list[Any], value: Any) -> Any:
    return REDACTED if any(isinstance(p, str) and _SECRETISH.match(p) for p in parts) else value


def compare(section: str, live: Any, declared: Any, *, extra_is_drift: bool = True) -> list[Difference]:
    """Every difference between `live` and `declared`, with secret-looking values redacted."""
    tree = DeepDiff(live, declared, verbose_level=2, view="tree")
    found: list[Difference] = []
    for category, levels in tree.items():
        for level in levels:
            parts = level.path(output_format="list")
            path = _json_path(parts)
            if category in ("dictionary_item_removed", "iterable_item_removed", "attribute_removed"):
                is_drift = extra_is_drift or bool(parts and parts[0] in ROLE_OWNED)
                kind, old, new, drift = "extra", level.t1, None, is_drift
            elif category in ("dictionary_item_added", "iterable_item_added", "attribute_added"):
                kind, old, new, drift = "missing", None, level.t2, True
            else:
                kind, old, new, drift = "changed", level.t1, level.t2, True
            found.append(Difference(section, path, kind, _redact(parts, old), _redact(parts, new), drift))
    return sorted(found)


# Longest Patroni-owned value shown in pretty output (`history` grows with every timeline).
_SHOW_MAX = 60


@dataclass(frozen=True)
class SitePlan:
    environment: str
    context: str
    namespace: str
    release: str
    declared_role: str
    live_role: str | None
    dcs_role: str | None
    revision: int | None  # None: the release is missing
    release_status: str | None
    differences: tuple[Difference, ...]
    patroni_owned: dict[str, str]
    live_config: dict[str, Any] | None
    target_config: dict[str, Any]  # what the `config` annotation must hold: declared + kept hand-set keys
    config_resource_version: str | None  # of the read the plan is based on: the write must carry it
    prune: bool = False
    leader_member: str | None = field(default=None, compare=False)
    site: SiteState | None = field(default=None, compare=False, repr=False)  # the snapshot compared
    # The dependents as read (rolegen.cluster.dependents_diff adds them and their differences, section dependents)
    dependents: tuple[DependentState, ...] = field(default=(), compare=False, repr=False)

    @property
    def drift(self) -> bool:
        return any(d.drift for d in self.differences)

    @property
    def needs_helm(self) -> bool:
        """Helm runs only for a missing release, different values, or a missing DCS ConfigMap (Helm re-creates
        the chart's objects; rolegen never creates a ConfigMap Patroni selects by labels itself)."""
        return (any(d.section in ("release", "values") and d.drift for d in self.differences)
                or self.config_resource_version is None)

    @property
    def needs_config(self) -> bool:
        return self.live_config != self.target_config

    @property
    def needs_dependents(self) -> bool:
        return any(d.section == "dependents" and d.drift for d in self.differences)

    @property
    def changes(self) -> bool:
        return self.needs_helm or self.needs_config or self.needs_dependents

    @property
    def role_ok(self) -> bool:
        return self.live_role == self.declared_role

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON form (README, "diff and apply"): keys stable, differences sorted."""
        return {
            "environment": self.environment,
            "context": self.context,
            "namespace": self.namespace,
            "release": {"name": self.release, "revision": self.revision, "status": self.release_status},
            "role": {"declared": self.declared_role, "live": self.live_role, "dcs": self.dcs_role},
            "drift": self.drift,
            "differences": [d.as_dict() for d in self.differences],
            "patroni_owned": dict(sorted(self.patroni_owned.items())),
            # Only with dependents declared: a spec without prints what it always printed.
            **({"dependents": [d.as_dict() for d in self.dependents]} if self.dependents else {}),
        }

    def lines(self) -> list[str]:
        return plan_lines(self)


def plan_site(
    spec: Spec,
    rendered: Rendered,
    release: ReleaseInfo | None,
    site: SiteState,
    *,
    context: str,
    prune: bool = False,
) -> SitePlan:
    """Compare one live site with its rendered environment. With `prune`, hand-set extra keys count as drift
    (apply removes them); without it they are shown and kept."""
    declared = dcs_config(spec)
    found: list[Difference] = []
    if release is None:
        found.append(Difference("release", "$", "missing", None, spec.release))
    else:
        # Extra release values are drift: `upgrade --install` resets values, so they would disappear anyway.
        found += [at_chart_default(d) for d in compare("values", release.values, rendered.values)]
        if release.status != "deployed":  # a failed/pending upgrade is re-run even when the values match
            found.append(Difference("release", "$.status", "changed", release.status, "deployed"))
    if site.config is None:
        found.append(Difference("config", "$", "missing", None, declared))
        target = declared
    else:
        found += compare("config", site.config, declared, extra_is_drift=prune)
        target = declared if prune else keep_extra(site.config, declared)
    if site.live_role != spec.role:
        found.append(Difference("role", "$", "changed", site.live_role, spec.role))
    owned = {k: v for k, v in site.config_annotations.items() if k in PATRONI_OWNED}
    leader = site.leader_member
    return SitePlan(
        environment=spec.environment,
        context=context,
        namespace=spec.namespace,
        release=spec.release,
        declared_role=spec.role,
        live_role=site.live_role,
        dcs_role=site.dcs_role,
        revision=release.revision if release else None,
        release_status=release.status if release else None,
        differences=tuple(sorted(found, key=_order)),
        patroni_owned=owned,
        live_config=site.config,
        target_config=target,
        config_resource_version=site.config_resource_version,
        prune=prune,
        leader_member=leader.name if leader else None,
        site=site,
    )


def read_plan(spec: Spec, cluster: Cluster, *, prune: bool = False) -> SitePlan:
    """Snapshot one site (DCS objects, Pods, Helm release) and compare it with a fresh render of `spec`."""
    site = read_site(spec, cluster)
    release = Releases(cluster).get(spec.release)
    return plan_site(spec, render(spec), release, site, context=cluster.name, prune=prune)


def at_chart_default(d: Difference) -> Difference:
    """A value declared but not set in the release, equal to the chart default the release already gets
    (a release installed without rolegen, then imported): shown, but not drift — Helm would change nothing."""
    if d.kind != "missing" or d.section != "values" or "[" in d.path:
        return d
    default: Any = chart_defaults()
    for key in d.path.split(".")[1:]:
        if not isinstance(default, dict) or key not in default:
            return d
        default = default[key]
    return replace(d, drift=False) if _within(d.declared, default) else d


def _within(declared: Any, default: Any) -> bool:
    """Helm merges user values over the chart's: a declared map whose every value equals the default changes nothing."""
    if isinstance(declared, dict) and isinstance(default, dict):
        return all(k in default and _within(v, default[k]) for k, v in declared.items())
    return bool(declared == default)


_SECTIONS = ("release", "role", "values", "config", "dependents")


def _order(d: Difference) -> tuple[int, str, str]:
    return (_SECTIONS.index(d.section) if d.section in _SECTIONS else len(_SECTIONS), d.path, d.kind)


def difference_line(d: Difference) -> str:
    """One difference, `live -> declared`, the way pretty output shows it."""
    if d.section == "release" and d.kind == "missing":
        return f"release  {d.declared}: missing (helm upgrade --install creates it)"
    if d.section == "release":
        return f"release  status {d.live}, not {d.declared} (helm upgrade runs again)"
    if d.section == "role":
        live = d.live or "no leader"
        return f"role     Patroni reports {live}, declared {d.declared}"
    if d.section == "dependents" and d.kind == "missing" and d.path.count(".") == 1:
        does = ("apply installs it" if str(d.declared).startswith("helm ")
                else "rolegen scales it, never creates it: deploy it first")
        return f"dependent {d.path[2:]}: {d.declared} not found ({does})"
    if d.kind == "missing" and not d.drift:
        text = f"not set, declared {dumps_json(d.declared)} = the chart's default (no change)"
    elif d.kind == "missing":
        text = f"missing, declared {dumps_json(d.declared)}"
    elif d.kind == "extra" and not d.drift:
        text = f"extra {dumps_json(d.live)} (kept; --prune removes)"
    elif d.kind == "extra":
        text = f"extra {dumps_json(d.live)} (removed)"
    else:
        text = f"{dumps_json(d.live)} -> {dumps_json(d.declared)}"
    return f"{d.section:8} {d.path}: {text}"


def plan_lines(plan: SitePlan) -> list[str]:
    """Pretty output of one site: a header, each difference, Patroni's own annotations, a verdict."""
    release = (
        f"release {plan.release} revision {plan.revision} ({plan.release_status})"
        if plan.revision is not None
        else f"release {plan.release} missing"
    )
    lines = [f"{plan.environment}: context {plan.context}, namespace {plan.namespace}, {release}"]
    lines += [f"  {difference_line(d)}" for d in plan.differences]
    lines += [f"  dependent {state.line()}" for state in plan.dependents if state.found]
    for key, value in sorted(plan.patroni_owned.items()):
        shown = value if len(value) <= _SHOW_MAX else value[: _SHOW_MAX - 3] + "..."
        lines.append(f"  patroni  {key}: {shown} (Patroni-owned, never drift)")
    drift = [d for d in plan.differences if d.drift]
    lines.append(f"  drift: {len(drift)} difference(s) (live -> declared)" if drift else "  no drift")
    return lines

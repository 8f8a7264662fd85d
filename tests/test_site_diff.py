"""How a live site differs from its rendered environment (rolegen.cluster.site_diff), without a cluster: the comparison
(key order, redaction, hand-set keys kept) and the plan of one site (sections, chart defaults, pretty lines)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rolegen.cluster.helm import ReleaseInfo
from rolegen.cluster.site_diff import (
    REDACTED,
    Difference,
    SitePlan,
    compare,
    difference_line,
    keep_extra,
    plan_lines,
    plan_site,
)
from rolegen.cluster.site_state import Member, SiteState
from rolegen.offline.render import dcs_config, render
from rolegen.offline.spec import Spec
from rolegen.offline.workspace import load_workspace

DECLARED = {"ttl": 30, "postgresql": {"parameters": {"max_connections": 100}}, "standby_cluster": {"port": 5432}}


def test_no_difference_when_equal_even_if_key_order_differs() -> None:
    live = {"standby_cluster": {"port": 5432}, "postgresql": {"parameters": {"max_connections": 100}}, "ttl": 30}
    assert compare("config", live, DECLARED) == []


def test_changed_missing_and_extra_paths() -> None:
    live = {"ttl": 10, "postgresql": {"parameters": {"max_connections": 100, "work_mem": "8MB"}}}
    found = compare("config", live, DECLARED, extra_is_drift=False)
    assert found == [
        Difference("config", "$.postgresql.parameters.work_mem", "extra", "8MB", None, drift=False),
        Difference("config", "$.standby_cluster", "missing", None, {"port": 5432}),
        Difference("config", "$.ttl", "changed", 10, 30),
    ]


def test_live_standby_cluster_on_a_declared_leader_is_drift_not_an_extra_key() -> None:
    declared = {"ttl": 30}
    [diff] = compare("config", {"ttl": 30, "standby_cluster": {"host": "peer"}}, declared, extra_is_drift=False)
    assert (diff.path, diff.kind, diff.drift) == ("$.standby_cluster", "extra", True)


def test_secret_like_values_are_redacted() -> None:
    [diff] = compare("values", {"auth": {"password": "old"}}, {"auth": {"password": "new"}})
    assert (diff.live, diff.declared) == (REDACTED, REDACTED)


def test_keep_extra_keeps_hand_set_keys_but_not_a_stale_standby_cluster() -> None:
    live = {"ttl": 10, "standby_cluster": {"host": "x"}, "postgresql": {"parameters": {"work_mem": "8MB"}}}
    declared = {"ttl": 30, "postgresql": {"parameters": {"max_connections": 100}}}
    assert keep_extra(live, declared) == {
        "ttl": 30,
        "postgresql": {"parameters": {"max_connections": 100, "work_mem": "8MB"}},
    }


REPO = Path(__file__).resolve().parent.parent


def leader_lock(holder: str) -> dict[str, str]:
    """A fresh `<scope>-leader` lock held by `holder`: live roles count only for the lock holder."""
    return {"leader": holder, "renewTime": datetime.now(UTC).isoformat(), "ttl": "30"}


@pytest.fixture(scope="module")
def specs() -> dict[str, Spec]:
    return load_workspace(REPO / "environments").specs


def member(role: str | None, name: str = "patroni-0") -> Member:
    return Member(name, role, "running", 1, 100, None)


def site(spec: Spec, config: dict[str, Any] | None = None, role: str | None = None, rv: str | None = "7") -> SiteState:
    return SiteState(
        environment=spec.environment,
        config=copy.deepcopy(dcs_config(spec)) if config is None else config,
        config_resource_version=rv,
        config_annotations={"initialize": "7712", "config": "{}"},
        leader_annotations=leader_lock("patroni-0"),
        members=[member(role or spec.role)],
    )


def release(spec: Spec, values: dict[str, Any] | None = None, status: str = "deployed") -> ReleaseInfo:
    return ReleaseInfo(spec.release, 3, status, copy.deepcopy(render(spec).values) if values is None else values)


def plan(spec: Spec, live: SiteState, rel: ReleaseInfo | None, prune: bool = False) -> SitePlan:
    return plan_site(spec, render(spec), rel, live, context="ctx", prune=prune)


def test_a_site_that_matches_has_nothing_to_do(specs: dict[str, Spec]) -> None:
    gold = specs["gold"]
    p = plan(gold, site(gold), release(gold))
    assert p.differences == ()
    assert (p.drift, p.changes, p.role_ok) == (False, False, True)
    assert p.patroni_owned == {"initialize": "7712"}  # shown; `config` itself is not "Patroni-owned"
    assert plan_lines(p)[-1] == "  no drift"


def test_hand_set_key_is_shown_and_kept_unless_pruned(specs: dict[str, Spec]) -> None:
    gold = specs["gold"]
    live = copy.deepcopy(dcs_config(gold))
    live["postgresql"]["parameters"]["work_mem"] = "8MB"
    kept = plan(gold, site(gold, live), release(gold))
    extra = Difference("config", "$.postgresql.parameters.work_mem", "extra", "8MB", None, drift=False)
    assert kept.differences == (extra,)
    assert (kept.drift, kept.needs_config, kept.target_config == live) == (False, False, True)
    assert difference_line(extra) == 'config   $.postgresql.parameters.work_mem: extra "8MB" (kept; --prune removes)'

    pruned = plan(gold, site(gold, live), release(gold), prune=True)
    assert pruned.drift and pruned.needs_config and not pruned.needs_helm
    assert pruned.target_config == dcs_config(gold)
    assert difference_line(pruned.differences[0]).endswith("(removed)")


def test_changed_config_key_is_drift_with_its_path(specs: dict[str, Spec]) -> None:
    gold = specs["gold"]
    live = {**dcs_config(gold), "ttl": 99}
    p = plan(gold, site(gold, live), release(gold))
    assert p.differences == (Difference("config", "$.ttl", "changed", 99, 30),)
    assert p.needs_config and not p.needs_helm
    assert difference_line(p.differences[0]) == "config   $.ttl: 99 -> 30"
    assert "  drift: 1 difference(s) (live -> declared)" in plan_lines(p)


def test_missing_or_failed_release_and_changed_values_need_helm(specs: dict[str, Spec]) -> None:
    gold = specs["gold"]
    missing = plan(gold, site(gold), None)
    assert missing.needs_helm and missing.revision is None
    assert difference_line(missing.differences[0]) == "release  patroni: missing (helm upgrade --install creates it)"
    assert "release patroni missing" in plan_lines(missing)[0]

    failed = plan(gold, site(gold), release(gold, status="failed"))
    assert failed.needs_helm and "status failed, not deployed" in difference_line(failed.differences[0])

    values = copy.deepcopy(render(gold).values)
    values["replicaCount"] = 3
    values["stale"] = True  # upgrade resets values: an extra release value is drift too
    changed = plan(gold, site(gold), release(gold, values))
    assert [(d.path, d.kind, d.drift) for d in changed.differences] == [
        ("$.replicaCount", "changed", True),
        ("$.stale", "extra", True),
    ]
    assert changed.needs_helm and not changed.needs_config


def test_missing_configmap_needs_helm_to_recreate_it(specs: dict[str, Spec]) -> None:
    gold = specs["gold"]
    p = plan(gold, SiteState("gold", None, None), release(gold))
    assert p.needs_helm and p.target_config == dcs_config(gold)
    assert ("config", "$", "missing") in [(d.section, d.path, d.kind) for d in p.differences]
    assert ("role", "changed", None) in [(d.section, d.kind, d.live) for d in p.differences]


def test_live_standby_cluster_on_declared_leader_is_removed_and_role_is_drift(specs: dict[str, Spec]) -> None:
    gold = specs["gold"]
    live = {**dcs_config(gold), "standby_cluster": {"host": "patroni-master-golddr", "port": 5432}}
    p = plan(gold, site(gold, live, role="standby-leader"), release(gold))
    assert "standby_cluster" not in p.target_config
    assert p.dcs_role == "standby-leader" and p.live_role == "standby-leader" and not p.role_ok
    assert [d.section for d in p.differences] == ["role", "config"]  # role first, then by section
    assert difference_line(p.differences[0]) == "role     Patroni reports standby-leader, declared leader"


def test_json_form_is_stable(specs: dict[str, Spec]) -> None:
    golddr = specs["golddr"]
    data = plan(golddr, site(golddr), release(golddr)).as_dict()
    assert data == {
        "environment": "golddr",
        "context": "ctx",
        "namespace": "f088b1-prod",
        "release": {"name": "patroni", "revision": 3, "status": "deployed"},
        "role": {"declared": "standby-leader", "live": "standby-leader", "dcs": "standby-leader"},
        "drift": False,
        "differences": [],
        "patroni_owned": {"initialize": "7712"},
    }


def test_long_patroni_owned_values_are_shortened_in_pretty_output(specs: dict[str, Spec]) -> None:
    gold = specs["gold"]
    live = site(gold)
    live.config_annotations["history"] = "[" + ",".join(['[1,2,"no recovery target specified"]'] * 5) + "]"
    [line] = [x for x in plan_lines(plan(gold, live, release(gold))) if "history" in x]
    assert line.endswith("... (Patroni-owned, never drift)") and len(line) < 120

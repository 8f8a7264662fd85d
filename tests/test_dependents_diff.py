"""`rolegen diff` and `rolegen apply` with dependents (rolegen.cluster.dependents_diff), the site's applications
faked (tests/fake_dependents.py) and its database in its declared shape: diff shows each dependent's drift at its
path, apply previews it, asks, converges it under the role-change lease and is idempotent; a workload that does
not exist is refused before anything is asked or written; one that does not converge stops apply with a hint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from tests.dependents_example import add_example
from tests.fake_dependents import FakeApps, FakeReleases
from tests.test_apply import FakeClock, FakeStore, plan_for
from tests.test_cli import runner

from rolegen.cli import app
from rolegen.cluster import dependents
from rolegen.cluster.dependents_diff import differences
from rolegen.cluster.pair import SitePair
from rolegen.commands import apply as apply_cmd
from rolegen.commands import diff as diff_cmd
from rolegen.offline.spec import Spec
from rolegen.offline.workspace import load_workspace


@pytest.fixture
def sites(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeApps]:
    """Both sites with the README's example, rendered; their applications as the leader's (gold: web at 3,
    identity installed with its leader values) and golddr's left at the leader shape too (drift to scale down)."""
    add_example(workdir / "environments")
    assert runner.invoke(app, ["render", "--all"]).exit_code == 0
    specs = load_workspace(workdir / "environments").specs
    apps = {env: FakeApps(env) for env in specs}
    FakeReleases.apps = apps
    for site in apps.values():
        site.add("Deployment", "web", 3)
        FakeReleases(site).upgrade_install("identity", specs["gold"].dependents[0].shape("leader"))
        site.writes.clear()
    clock = FakeClock()
    monkeypatch.setattr("rolegen.cluster.wait.time", clock)
    monkeypatch.setattr(apply_cmd, "time", clock)
    monkeypatch.setattr(dependents, "Releases", FakeReleases)
    monkeypatch.setattr("rolegen.cluster.pair.RecordStore", FakeStore)
    FakeStore.leases, FakeStore.unreachable = {}, set()
    for module in (diff_cmd, apply_cmd):  # the database matches its spec: only the dependents differ
        monkeypatch.setattr(module, "read_plan", lambda spec, cluster, **_: plan_for(spec, context=spec.context))
    real_pair = apply_cmd.site_pair

    def site_pair(ws: Any, to: str, **kwargs: Any) -> SitePair:
        pair = real_pair(ws, to, **kwargs)
        return dataclasses.replace(pair, clusters={env: apps[env] for env in pair.clusters})  # type: ignore[misc]

    monkeypatch.setattr(apply_cmd, "site_pair", site_pair)
    monkeypatch.setattr(diff_cmd, "site_pair", site_pair)
    return apps


def test_differences_are_at_each_dependents_path(workdir: Path) -> None:
    add_example(workdir / "environments")
    spec: Spec = load_workspace(workdir / "environments").specs["golddr"]
    site = FakeApps("golddr")
    site.add("Deployment", "web", 3)
    FakeReleases.apps = {"golddr": site}
    dependents.Releases = FakeReleases  # type: ignore[misc]
    try:
        FakeReleases(site).upgrade_install("identity", spec.dependents[0].shape("leader"))
        states = dependents.read_all(site, spec.dependents)  # type: ignore[arg-type]
    finally:
        dependents.Releases = apply_cmd.Releases  # type: ignore[misc]
    found = [(d.path, d.kind, d.live, d.declared) for d in differences("standby-leader", states)]
    assert found == [("$.identity.values.readOnly", "extra", False, None),
                     ("$.identity.values.replicaCount", "changed", 2, 0),
                     ("$.web.spec.replicas", "changed", 3, 0)]


def test_diff_shows_dependents_drift_and_their_state(sites: dict[str, FakeApps]) -> None:
    result = runner.invoke(app, ["diff", "--env", "golddr", "--detailed-exitcode"])
    assert result.exit_code == 2, result.output
    assert "  dependents $.web.spec.replicas: 3 -> 0" in result.stdout
    assert "  dependents $.identity.values.replicaCount: 2 -> 0" in result.stdout
    assert "  dependent web: Deployment web 3/3 ready" in result.stdout
    data = json.loads(runner.invoke(app, ["diff", "--env", "golddr", "-f", "json"]).stdout)
    [env] = data["environments"]
    assert [d["path"] for d in env["differences"] if d["section"] == "dependents"] == [
        "$.identity.values.readOnly", "$.identity.values.replicaCount", "$.web.spec.replicas"]
    assert [d["name"] for d in env["dependents"]] == ["identity", "web"]
    assert runner.invoke(app, ["diff", "--env", "gold", "--detailed-exitcode"]).exit_code == 0


def test_apply_asks_then_converges_the_dependents_and_a_second_run_is_not_changed(
    sites: dict[str, FakeApps],
) -> None:
    refused = runner.invoke(app, ["apply", "--env", "golddr"])  # no terminal, no --yes: nothing written
    assert refused.exit_code == 1 and "--yes" in refused.stderr and sites["golddr"].writes == []
    result = runner.invoke(app, ["apply", "--env", "golddr", "--yes"])
    assert result.exit_code == 0, result.output
    assert sites["golddr"].writes == [("helm", "identity", "oci://registry.example.org/charts/identity", "3.2.1",
                                       "0"), ("scale", "web", "0")]
    assert sites["golddr"].pods == {("Deployment", "web"): 0, ("Deployment", "identity"): 0}
    assert result.stdout.splitlines()[-1] == "golddr: dependents in their standby-leader shape: identity, web"
    # The role-change lease was taken on both sites, and given back.
    assert all("holder" not in (FakeStore.leases[env].lease or {"holder": 0}) for env in ("gold", "golddr"))
    again = runner.invoke(app, ["apply", "--env", "golddr", "--yes"])
    assert again.exit_code == 0 and again.stdout.splitlines()[-1] == "Not changed"
    assert len(sites["golddr"].writes) == 2


def test_apply_dry_run_shows_the_dependents_and_writes_nothing(sites: dict[str, FakeApps]) -> None:
    result = runner.invoke(app, ["apply", "--env", "golddr", "--dry-run"])
    assert result.exit_code == 0 and "  dependents $.web.spec.replicas: 3 -> 0" in result.stdout
    assert sites["golddr"].writes == [] and FakeStore.leases == {}


def test_a_missing_workload_is_refused_before_anything_is_asked(sites: dict[str, FakeApps]) -> None:
    del sites["golddr"].workloads[("Deployment", "web")]
    result = runner.invoke(app, ["apply", "--env", "golddr", "--yes"])
    assert result.exit_code == 1
    assert "error: refusing to apply golddr: Deployment web not found on context golddr; rolegen scales a " \
        "dependent workload, never creates it, and nothing was changed" in result.stderr
    assert sites["golddr"].writes == [] and FakeStore.leases == {}


def test_a_dependent_that_does_not_converge_stops_apply_with_a_hint(sites: dict[str, FakeApps]) -> None:
    sites["gold"].workloads[("Deployment", "web")]["spec"]["replicas"] = 0
    sites["gold"].pods[("Deployment", "web")] = 0
    sites["gold"].stuck.add("web")
    result = runner.invoke(app, ["apply", "--env", "gold", "--yes"])
    assert result.exit_code == 1
    assert "error: gold: web did not reach its leader shape within 180s (Deployment web: 0/3 ready" in result.stderr
    assert "hint: look at it (kubectl -n f088b1-prod describe deployment ...), then re-run rolegen apply --env " \
        "gold" in result.stderr
    assert sites["gold"].writes == [("scale", "web", "3")]

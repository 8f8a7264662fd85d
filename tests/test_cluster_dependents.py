"""Dependents on a live site (rolegen.cluster.dependents), on fake applications: a dependent reaches its shape for a
role through one write, and the wait ends only once the site shows it (no Pod left when scaled to zero); one that
cannot get there, or does not exist, stops with what it left."""

from __future__ import annotations

import pytest
from tests.dependents_example import example
from tests.fake_dependents import FakeApps, FakeReleases
from tests.test_apply import FakeClock

from rolegen.cluster import dependents
from rolegen.cluster.dependents import DependentNotReady, Workload, reach, read_dependent
from rolegen.offline.dependents import Dependent, dependents_from

NS = "f088b1-prod"


@pytest.fixture(autouse=True)
def _fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rolegen.cluster.wait.time", FakeClock())
    monkeypatch.setattr(dependents, "Releases", FakeReleases)


def _example() -> dict[str, Dependent]:
    return {d.name: d for d in dependents_from(example()["dependents"])}


def _site(web: int = 3) -> FakeApps:
    site = FakeApps()
    site.add("Deployment", "web", web)
    FakeReleases.apps = {site.name: site}
    return site


def test_scaling_down_waits_until_no_pod_is_left() -> None:
    site, log = _site(), []
    state = reach(site, NS, _example()["web"], "standby-leader", log.append)
    assert site.writes == [("scale", "web", "0")]
    assert state.blocker("standby-leader") is None and site.pods[("Deployment", "web")] == 0
    assert log[0] == f"   web: kubectl -n {NS} scale deployment web --replicas=0"
    assert any("Pod(s)" in line for line in log[1:]), log  # the Pods still there were shown while it waited


def test_a_dependent_already_in_shape_is_not_written() -> None:
    site, log = _site(web=0), []
    reach(site, NS, _example()["web"], "standby-leader", log.append)
    assert site.writes == [] and log == ["   web: Deployment web 0/0 ready: already its standby-leader shape"]


def test_a_workload_whose_pods_never_get_ready_stops_with_what_it_left() -> None:
    site = _site(web=0)
    site.stuck.add("web")
    with pytest.raises(DependentNotReady) as caught:
        reach(site, NS, _example()["web"], "leader", lambda _: None)
    assert caught.value.message == ("web did not reach its leader shape within 180s (Deployment web: 0/3 ready, "
                                    "3 updated, 3 running)")
    assert site.writes == [("scale", "web", "3")]


def test_a_missing_workload_is_never_created() -> None:
    site = FakeApps()
    with pytest.raises(DependentNotReady, match="Deployment web not found on context gold: rolegen scales it, "
                       "never creates it"):
        reach(site, NS, _example()["web"], "leader", lambda _: None)
    assert site.writes == []


def test_a_helm_dependent_is_installed_with_its_role_values_and_waited_for() -> None:
    site, identity = _site(), _example()["identity"]
    state = reach(site, NS, identity, "leader", lambda _: None)
    assert site.writes == [("helm", "identity", "oci://registry.example.org/charts/identity", "3.2.1", "2")]
    assert state.release is not None and state.release.values == identity.shape("leader")
    assert [w.line() for w in state.workloads] == ["Deployment identity 2/2 ready"]
    again = reach(site, NS, identity, "standby-leader", lambda _: None)
    assert site.writes[-1][-1] == "0" and again.blocker("standby-leader") is None
    assert read_dependent(site, identity).blocker("leader") == "helm release identity runs other values than its " \
        "leader ones"


def test_a_change_its_controller_has_not_seen_is_not_its_shape_yet() -> None:
    seen = Workload("Deployment", "web", 0, generation=5, observed=4)
    assert seen.blocker() == "Deployment web: its controller has not acted on its last change yet"
    assert Workload("Deployment", "web", 0, generation=5, observed=5).blocker() is None

"""`rolegen reseed` on two sites in memory (tests/fake_sites.py): the standby's volumes are deleted only with proof,
read after the prompt, that the leader is alive and healthy with the data the preflight saw; the wiped site's
members start only once its old volumes are gone."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from tests.fake_sites import FakeSite, pod, sites

from rolegen.cluster.kubectl import ClusterUnreachable
from rolegen.errors import RolegenError
from rolegen.procedures import reseed


@pytest.fixture(autouse=True)
def _no_catch_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reseed, "_catch_up", lambda run: None)  # replay lag is not what these tests are about


def _deleted(site: FakeSite) -> list[str]:
    return [name for event, name in site.events if event == "delete"]


def _scaled_up(site: FakeSite) -> list[dict[str, object]]:
    return [e for kind, e in site.events if kind == "scale" and e["replicas"]]


def test_a_live_healthy_leader_lets_the_standby_be_wiped_and_cloned() -> None:
    pair, golddr, _ = sites("golddr")
    reseed.run(pair, confirm=lambda _: None, timeout=5)
    assert _deleted(golddr) == ["data-patroni-0"]
    [up] = _scaled_up(golddr)
    assert up["pvcs"] == [] and up["config"]["standby_cluster"]["host"] == "patroni-master-gold"


def _dies(gold: FakeSite) -> None:
    gold.alive = False


def _demoted(gold: FakeSite) -> None:
    annotations = gold.objects[("ConfigMap", gold.spec.config_map)]["metadata"]["annotations"]
    annotations["config"] = json.dumps({"ttl": 1, "standby_cluster": {"host": "patroni-master-golddr", "port": 5432}})


def _rebuilt(gold: FakeSite) -> None:
    gold.objects[("ConfigMap", gold.spec.config_map)]["metadata"]["annotations"]["initialize"] = "8"


def _container_stopped(gold: FakeSite) -> None:
    gold.objects[("Pod", "gold-0")] = pod("gold-0", gold.labels, "primary", 4, running=False)


@pytest.mark.parametrize(
    ("meanwhile", "why"),
    [
        (_dies, "gold's leader lock was not seen renewed while watched"),
        (_demoted, "gold's DCS config declares standby-leader, not leader"),
        (_rebuilt, "gold's system id is 8, not 7 as read at preflight"),
        (_container_stopped, "gold-0 leads gold but its container is stopped"),
    ],
)
def test_what_befalls_the_leader_during_the_prompt_keeps_the_standbys_volumes(
    meanwhile: Callable[[FakeSite], None], why: str
) -> None:
    """The prompt has no time limit: what the preflight saw of gold may be stale when the operator answers."""
    pair, golddr, gold = sites("golddr")
    with pytest.raises(RolegenError) as refused:
        reseed.run(pair, confirm=lambda _: meanwhile(gold), timeout=5)
    assert "golddr was not wiped" in refused.value.message and why in refused.value.message
    assert _deleted(golddr) == [] and golddr.named("PersistentVolumeClaim") == ["data-patroni-0"]
    assert "rolegen reseed --env golddr" in (refused.value.hint or "")
    # Refused before anything changed, or after the scale-down: then its members come back with their data,
    # never left at 0 (a restarting leader site's startup guard would wait for them forever).
    scales = [e for kind, e in golddr.events if kind == "scale"]
    assert [e["replicas"] for e in scales] in ([], [0, 1])
    if scales:
        assert scales[-1]["pvcs"] == ["data-patroni-0"]
        assert "golddr is back at 1 member(s) with its data (a fenced standby)" in refused.value.message


def test_a_failed_read_of_the_leader_before_the_wipe_stops_it_as_it_is() -> None:
    """One failed read is no proof either way: the run stops with that error (not a refusal, not a wipe)."""
    pair, golddr, _ = sites("golddr")
    reads = {"n": 0}
    real = pair.clusters["gold"].list

    def flaky(kind: str, selector: str | None = None) -> list[dict[str, object]]:
        reads["n"] += 1
        if reads["n"] > 1:  # the preflight's read answers; every later one fails
            raise ClusterUnreachable("cannot reach the cluster of context gold")
        return real(kind, selector)

    pair.clusters["gold"].list = flaky  # type: ignore[method-assign]
    with pytest.raises(ClusterUnreachable):
        reseed.run(pair, confirm=lambda _: None, timeout=5)
    assert _deleted(golddr) == [] and golddr.named("PersistentVolumeClaim") == ["data-patroni-0"]


def test_members_start_only_once_the_deleted_volumes_are_gone() -> None:
    """`kubectl delete --wait=false` returns while a PVC is Terminating: scaling up then binds the old volume."""
    pair, golddr, _ = sites("golddr")
    golddr.pvc_lingers = 3
    reseed.run(pair, confirm=lambda _: None, timeout=5)
    [up] = _scaled_up(golddr)
    assert up["pvcs"] == []


def test_volumes_that_never_go_away_stop_the_run_before_any_member_starts() -> None:
    pair, golddr, _ = sites("golddr")
    golddr.pvc_lingers = 10**6
    with pytest.raises(RolegenError, match="its PVCs are still there") as refused:
        reseed.run(pair, confirm=lambda _: None, timeout=0.5)
    assert _scaled_up(golddr) == [] and "rolegen reseed --env golddr" in (refused.value.hint or "")

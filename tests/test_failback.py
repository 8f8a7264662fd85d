"""`rolegen failback` on two sites in memory (tests/fake_sites.py): the old leader (gold) is wiped only with proof
that the new one (golddr) is a live, healthy leader, and its members start only as standbys of golddr."""

from __future__ import annotations

import json

import pytest
from tests.fake_sites import FakeSite, pod, sites

from rolegen.cluster.kubectl import ClusterUnreachable
from rolegen.errors import RolegenError
from rolegen.procedures import failback


@pytest.fixture(autouse=True)
def _no_switch_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(failback, "_switch_back", lambda run: None)  # the planned switchover has tests of its own


def _deleted(site: FakeSite) -> list[str]:
    return [name for event, name in site.events if event == "delete"]


def _scaled_up(site: FakeSite) -> list[dict[str, object]]:
    return [e for kind, e in site.events if kind == "scale" and e["replicas"]]


def test_a_reseeded_site_without_its_dcs_config_starts_only_as_a_standby_of_the_leader() -> None:
    """Without `<scope>-config`, Patroni on an empty volume bootstraps a new, empty primary: a second leader."""
    pair, gold, _ = sites("gold")
    del gold.objects[("ConfigMap", "patroni-config")]
    failback.run(pair, method="reseed", confirm=lambda _: None, timeout=5)
    assert _deleted(gold) == ["data-patroni-0", "data-patroni-1"]
    [up] = _scaled_up(gold)
    standby = up["config"]["standby_cluster"]  # type: ignore[index]
    assert (standby["host"], standby["port"]) == ("patroni-master-golddr", 5432)
    created = gold.objects[("ConfigMap", "patroni-config")]["metadata"]
    assert created["labels"] == {"application": "patroni", "cluster-name": "patroni"}  # what Patroni selects by
    assert "initialize" not in created["annotations"]


def test_a_leader_that_dies_while_the_prompt_is_open_keeps_the_old_sites_volumes() -> None:
    pair, gold, golddr = sites("gold")

    def answer_late(_: str) -> None:
        golddr.alive = False

    with pytest.raises(RolegenError) as refused:
        failback.run(pair, method="reseed", confirm=answer_late, timeout=5)
    assert "gold was not wiped" in refused.value.message
    assert "golddr's leader lock was not seen renewed while watched" in refused.value.message
    assert _deleted(gold) == [] and gold.named("PersistentVolumeClaim") == ["data-patroni-0", "data-patroni-1"]
    assert "rolegen failback --to gold --method reseed" in (refused.value.hint or "")


def _figures(site: FakeSite, name: str, **figures: object) -> None:
    base = {"block_size": 8192, "data_bytes": 100 << 20, "fpi_counted_from": "0/3000000", "fpi_per_mib": None,
            "fpi_since_redo": 0, "in_recovery": False, "lsn": "0/3000000", "redo_lsn": "0/3000000",
            "wal_bytes": 16 << 20}
    annotations = site.objects[("Pod", name)]["metadata"].setdefault("annotations", {})
    annotations["rolegen.io/storage"] = json.dumps({**base, **figures})


def test_auto_re_seeds_when_the_figures_say_a_rewind_would_move_more() -> None:
    """A small database whose leader keeps a large pg_wal: pg_rewind would copy all of it, more than the data."""
    pair, gold, golddr = sites("gold")
    gold.objects[("Pod", "gold-0")] = pod("gold-0", gold.labels, "replica", 3)
    _figures(gold, "gold-0", fpi_since_redo=10)
    _figures(golddr, "golddr-0", wal_bytes=400 << 20)
    lines: list[str] = []
    pair.log = lines.append
    result = failback.run(pair, method="auto", confirm=lambda _: None, timeout=5)
    assert result.reason == "a rewind would move at least as much as a re-seed"
    assert _deleted(gold) == ["data-patroni-0", "data-patroni-1"]  # re-seeded
    assert (result.predicted["rewind_bytes"] or 0) > (result.predicted["reseed_bytes"] or 0) == 100 << 20
    [said] = [line for line in lines if line.startswith("   would move over the link: rewind: about ")]
    assert "golddr-0's pg_wal 400 MiB, copied whole" in said and "re-seed: about 100 MiB" in said


def test_auto_falls_back_to_reseed_only_on_a_rewind_that_ran_out_not_on_a_failed_read() -> None:
    """The leader's API dropping during the rewind wait is no reason to wipe the other copy: the run stops."""
    pair, gold, _ = sites("gold")
    real = pair.clusters["golddr"].list
    reads = {"n": 0}

    def drops(kind: str, selector: str | None = None) -> list[dict[str, object]]:
        reads["n"] += 1
        if reads["n"] > 1:
            raise ClusterUnreachable("cannot reach the cluster of context golddr")
        return real(kind, selector)

    pair.clusters["golddr"].list = drops  # type: ignore[method-assign]
    with pytest.raises(ClusterUnreachable):
        failback.run(pair, method="auto", confirm=lambda _: None, timeout=5)
    assert _deleted(gold) == [] and gold.named("PersistentVolumeClaim") == ["data-patroni-0", "data-patroni-1"]


def test_a_fence_that_does_not_take_asks_to_stop_the_node_first_never_to_force_delete_the_pod() -> None:
    """base.demote's refusal (every fence: failback, failover, switchover): a force-deleted Pod on a partitioned
    node may keep its PostgreSQL running beside the copy the StatefulSet starts, a second primary."""
    pair, gold, _ = sites("gold")  # gold's DCS config already declares standby: the fence is written
    gold.objects[("Pod", "gold-0")] = pod("gold-0", gold.labels, "primary", 3)  # hung: keeps its last report
    gold.lock("gold-0")
    with pytest.raises(RolegenError, match="a member may still accept writes") as refused:
        pair.demote(pair.to, pair.read(pair.to), 0.3, leader=pair.other, promotion=None)
    hint = refused.value.hint or ""
    first, _, warning = hint.partition("Never force-delete")
    assert "stop that member's PostgreSQL for certain first: on its node, or stop the node" in first
    assert "--force" not in first and "node may still run PostgreSQL" in warning


def test_a_config_that_does_not_read_back_as_standby_keeps_the_wiped_site_stopped() -> None:
    """gold's config still declares leader (failover could not write it) and the rewrite does not take (here: a
    write the API server acknowledges and drops): its members must not start on empty volumes."""
    pair, gold, _ = sites("gold")
    gold.objects[("ConfigMap", "patroni-config")]["metadata"]["annotations"]["config"] = '{"ttl":1}'
    fake = pair.clusters["gold"]
    real = fake.merge_patch

    def dropped(kind: str, name: str, patch: dict[str, object], resource_version: str | None = None) -> str | None:
        return None if name == "patroni-config" else real(kind, name, patch, resource_version)  # type: ignore[arg-type]

    fake.merge_patch = dropped  # type: ignore[method-assign]
    with pytest.raises(RolegenError, match="its members must not start: gold's DCS config does not declare "
                                           "standby_cluster") as refused:
        failback.run(pair, method="reseed", confirm=lambda _: None, timeout=5)
    assert _scaled_up(gold) == [] and "rolegen failback --to gold --method reseed" in (refused.value.hint or "")

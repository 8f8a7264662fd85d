"""A role change's API proxy against the real API servers (rolegen.cluster.api_session, .api_calls, .changes):
what it reads is what kubectl reads, its guarded writes refuse as kubectl's do, the operator's route cut is
"unreachable" through it and it recovers once healed, and a watched change wakes a wait at once."""

from __future__ import annotations

import json
import time

import pytest

from conftest import lab_cluster, lab_pair
from rolegen.cluster.api_session import opened
from rolegen.cluster.kubectl import AlreadyExists, ClusterUnreachable, Conflict
from rolegen.cluster.site_state import read_site
from rolegen.procedures.wake import toggled
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab


def stable(state: dict[str, object]) -> dict[str, object]:
    """What does not move between two reads a moment apart (Patroni rewrites positions every loop)."""
    members = [{k: m[k] for k in ("name", "role", "label")} for m in state["members"]]  # type: ignore[attr-defined]
    return {"dcs_role": state["dcs_role"], "live_role": state["live_role"], "initialize": state["initialize"],
            "leader": state["leader"], "members": members}


def test_a_site_read_through_the_proxy_is_the_site_a_kubectl_run_reads(lab: Lab) -> None:
    pair = lab_pair(lab, "golddr")
    by_kubectl = [read_site(spec, pair.cluster(spec)).as_dict() for spec in (pair.to, pair.other)]
    with opened([pair.cluster(spec).proxy_site() for spec in (pair.to, pair.other)]) as serving:
        assert sorted(serving) == ["gold", "golddr"]
        by_proxy = [read_site(spec, pair.cluster(spec)).as_dict() for spec in (pair.to, pair.other)]
    assert [stable(s) for s in by_proxy] == [stable(s) for s in by_kubectl]
    assert [s["dcs_role"] for s in by_proxy] == ["standby-leader", "leader"]


def test_guarded_writes_through_the_proxy_refuse_a_stale_version_and_a_second_create(lab: Lab) -> None:
    cluster = lab_cluster(lab, "gold")
    name = "rolegen-test-proxy-writes"
    with opened([cluster.proxy_site()]):
        assert cluster.session() is not None
        cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name, "annotations": {"n": "0"}}})
        try:
            with pytest.raises(AlreadyExists):
                cluster.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
            first = cluster.get("configmap", name)
            assert first is not None
            version = first["metadata"]["resourceVersion"]
            new = cluster.merge_patch("configmap", name, {"metadata": {"annotations": {"n": "1"}}}, version)
            assert new is not None and new != version
            with pytest.raises(Conflict):  # computed from the first read: refused, nothing overwritten
                cluster.merge_patch("configmap", name, {"metadata": {"annotations": {"n": "2"}}}, version)
            after = cluster.get("configmap", name)
            assert after is not None and after["metadata"]["annotations"]["n"] == "1"
        finally:
            cluster.delete("configmap", name)
        assert cluster.get("configmap", name) is None
        cluster.delete("configmap", name)  # already gone: not an error, as kubectl --ignore-not-found


def test_the_operators_route_cut_is_unreachable_through_the_proxy_and_it_recovers_once_healed(lab: Lab) -> None:
    cluster = lab_cluster(lab, "gold")
    with opened([cluster.proxy_site()]):
        assert cluster.get("configmap", "patroni-config") is not None
        lab.api_cut("gold")
        try:
            with pytest.raises(ClusterUnreachable):
                cluster.get("configmap", "patroni-config")
            lab.api_slow("gold")  # accepted, never answered: a timeout, which is "unreachable" too
            with pytest.raises(ClusterUnreachable):
                cluster.brief(2).get("configmap", "patroni-config")
        finally:
            lab.api_heal("gold")
        deadline = time.monotonic() + 20
        while True:
            try:
                assert cluster.get("configmap", "patroni-config") is not None
                break
            except ClusterUnreachable:
                assert time.monotonic() < deadline, "the proxy did not recover after the route healed"
                time.sleep(0.2)
        assert cluster.session() is not None  # the same proxy, reconnected


def test_a_change_to_a_watched_site_wakes_a_wait_long_before_its_fallback(lab: Lab) -> None:
    pair = lab_pair(lab, "golddr")
    with pair.live(lambda _: None):
        changes = pair.changes
        assert changes is not None
        time.sleep(1.0)
        changes.sleep(0)  # what the watches' first lines and Patroni's loops woke so far, consumed
        state = read_site(pair.to, pair.cluster(pair.to))
        text = state.config_annotations["config"]
        assert json.loads(toggled(text)) == json.loads(text)
        # The nudge's write: the same configuration in another text, which nothing but the watch notices.
        pair.cluster(pair.to).merge_patch("configmap", pair.to.config_map,
                                          {"metadata": {"annotations": {"config": toggled(text)}}},
                                          state.config_resource_version)
        started = time.monotonic()
        changes.sleep(30)
        assert time.monotonic() - started < 5
    assert pair.changes is None

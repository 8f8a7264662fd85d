"""The nudge that wakes a site's Patroni: same configuration, new annotation text, never a blind overwrite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rolegen.cluster.kubectl import Cluster, Conflict
from rolegen.cluster.site_state import SiteState
from rolegen.offline.workspace import load_workspace
from rolegen.procedures.wake import Nudger, toggled

REPO = Path(__file__).resolve().parents[1]
CONFIG = '{"loop_wait":10,"standby_cluster":{"host":"patroni-master-gold","port":5432},"ttl":30}'


class FakeCluster(Cluster):
    """Records kubectl invocations; answers a patch with the next resourceVersion, or a conflict."""

    def __init__(self) -> None:
        super().__init__("ns")
        self.calls: list[tuple[str, ...]] = []
        self.version, self.conflict = 7, False

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        self.calls.append(args)
        if self.conflict:
            raise Conflict("patch configmap patroni-config: changed by someone else since it was read")
        self.version += 1
        return str(self.version)


def state(text: str, version: str) -> SiteState:
    return SiteState("golddr", json.loads(text), version, {"config": text}, {}, [])


def body(call: tuple[str, ...]) -> dict[str, Any]:
    return json.loads(call[call.index("-p") + 1])


def test_the_toggled_text_is_the_same_configuration_for_patroni() -> None:
    once = toggled(CONFIG)
    assert once != CONFIG and json.loads(once) == json.loads(CONFIG)
    assert toggled(once) == CONFIG  # back and forth: the annotation never grows


def test_a_nudge_carries_the_version_it_was_computed_from_and_follows_its_own_writes() -> None:
    cluster, spec = FakeCluster(), load_workspace(REPO / "environments").specs["golddr"]
    nudger = Nudger(cluster, spec, every=0)
    nudger.seen(state(CONFIG, "7"))
    nudger.maybe()
    nudger.maybe()
    first, second = (body(c) for c in cluster.calls)
    assert cluster.calls[0][:3] == ("patch", "configmap", spec.config_map)
    assert first["metadata"] == {"annotations": {"config": toggled(CONFIG)}, "resourceVersion": "7"}
    assert second["metadata"] == {"annotations": {"config": CONFIG}, "resourceVersion": "8"}
    assert nudger.count == 2


def test_a_conflict_stops_the_nudges_until_a_fresh_read() -> None:
    cluster, spec = FakeCluster(), load_workspace(REPO / "environments").specs["golddr"]
    nudger = Nudger(cluster, spec, every=0)
    nudger.seen(state(CONFIG, "7"))
    cluster.conflict = True
    nudger.maybe()
    nudger.maybe()
    assert len(cluster.calls) == 1 and nudger.count == 0  # someone else changed it: not retried blindly
    cluster.conflict = False
    nudger.seen(state(CONFIG, "9"))
    nudger.maybe()
    assert body(cluster.calls[-1])["metadata"]["resourceVersion"] == "9"


def test_nudges_are_spaced() -> None:
    cluster, spec = FakeCluster(), load_workspace(REPO / "environments").specs["golddr"]
    nudger = Nudger(cluster, spec, every=60)
    nudger.seen(state(CONFIG, "7"))
    for _ in range(5):
        nudger.maybe()
    assert len(cluster.calls) == 1

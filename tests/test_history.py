"""The role-change history on the clusters (rolegen.cluster.history) and `rolegen history` (rolegen.commands.history):
bounded, appended at the resourceVersion read, merged across both sites, an unreadable site said as such."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fake_sites import ENVIRONMENTS, FakeCluster, FakeSite
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster import history
from rolegen.cluster.history import HISTORY, KEEP, SiteHistory, append, merge
from rolegen.cluster.kubectl import ClusterUnreachable, Conflict
from rolegen.cluster.pair import SitePair
from rolegen.cluster.records import LEASE, RecordStore
from rolegen.commands import history as history_cmd
from rolegen.offline.workspace import load_workspace


def _entry(n: int, verb: str = "switchover", to: str = "golddr", **more: Any) -> dict[str, Any]:
    return {"started": f"2026-12-02T10:{n:02d}:00.00Z", "verb": verb, "from": "gold", "to": to, "outcome": "ok",
            **more}


def _store(env: str = "gold") -> tuple[RecordStore, FakeSite, FakeCluster]:
    spec = load_workspace(ENVIRONMENTS).specs[env]
    site = FakeSite(spec, leads=env == "gold")
    cluster = FakeCluster(site)
    return RecordStore(spec, cluster), site, cluster  # type: ignore[arg-type]


def test_the_history_keeps_the_last_fifty_and_no_other_annotation_changes() -> None:
    store, _, _ = _store()
    store.ensure()
    store.write({LEASE: {"token": 3}}, store.read().resource_version or "")
    for n in range(KEEP + 5):
        append(store, _entry(n))
    kept = history.read(store)
    assert len(kept) == KEEP == 50
    assert (kept[0], kept[-1]) == (_entry(5), _entry(54))
    assert store.read().lease == {"token": 3}


def test_an_append_that_meets_a_conflict_reads_again_and_keeps_both(monkeypatch: pytest.MonkeyPatch) -> None:
    store, _, cluster = _store()
    append(store, _entry(1))
    real = cluster.merge_patch
    raced: list[bool] = []

    def merge_patch(kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None) -> str:
        if not raced:  # another run appends between our read and our write
            raced.append(True)
            real(kind, name, {"metadata": {"annotations": {HISTORY: json.dumps([_entry(1), _entry(2)])}}})
            raise Conflict("changed by someone else since it was read")
        return real(kind, name, patch, resource_version)

    monkeypatch.setattr(cluster, "merge_patch", merge_patch)
    append(store, _entry(3))
    assert history.read(store) == [_entry(1), _entry(2), _entry(3)]


def test_merge_shows_a_change_seen_on_both_sites_once_naming_both_newest_last() -> None:
    both = _entry(5, lsn=100)
    merged = merge([SiteHistory("golddr", (_entry(1), both, _entry(9, to="gold"))),
                    SiteHistory("gold", (both, _entry(3, verb="failover"))), SiteHistory("x", error="unreadable")])
    assert [(e["started"][11:16], e["verb"], e["sites"]) for e in merged] == [
        ("10:01", "switchover", ["golddr"]), ("10:03", "failover", ["gold"]),
        ("10:05", "switchover", ["gold", "golddr"]), ("10:09", "switchover", ["golddr"])]


def test_merge_keeps_the_fuller_of_two_records_of_one_change() -> None:
    short, full = _entry(1), _entry(1, lsn=7, timeline=5)
    assert merge([SiteHistory("gold", (short,)), SiteHistory("golddr", (full,))]) == [
        {**full, "sites": ["gold", "golddr"]}]


# -- rolegen history --------------------------------------------------------------------------------------------
@pytest.fixture
def clusters(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeCluster]:
    ws = load_workspace(ENVIRONMENTS)
    made = {env: FakeCluster(FakeSite(spec, leads=env == "gold")) for env, spec in ws.specs.items()}

    def site_pair(ws: Any, to: str, **_: Any) -> SitePair:
        spec = ws.specs[to]
        other = ws.specs[spec.peer.environment]
        return SitePair(ws.env_dir, spec, other, {to: made[to], other.environment: made[other.environment]})  # type: ignore[dict-item]

    monkeypatch.setattr(history_cmd, "site_pair", site_pair)
    return made


def _record(cluster: FakeCluster, *entries: dict[str, Any]) -> None:
    store = RecordStore(cluster.site.spec, cluster)  # type: ignore[arg-type]
    for entry in entries:
        append(store, entry)


def _unreachable(cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    def get(kind: str, name: str) -> None:
        raise ClusterUnreachable(f"cannot reach the cluster of context {cluster.site.spec.environment}: i/o timeout")

    monkeypatch.setattr(cluster, "get", get)


def test_history_reads_both_sites_and_merges_them(clusters: dict[str, FakeCluster]) -> None:
    _record(clusters["gold"], _entry(1), _entry(2, verb="failover", to="gold"))
    _record(clusters["golddr"], _entry(1))
    result = history_cmd.run(ENVIRONMENTS)
    assert result.ok
    assert [(e["verb"], e["sites"]) for e in result.records] == [("switchover", ["gold", "golddr"]),
                                                                  ("failover", ["gold"])]
    assert result.lines()[:2] == ["gold: 2 record(s)", "golddr: 1 record(s)"]
    assert result.lines()[2].startswith("2026-12-02T10:01:00.00Z  switchover gold -> golddr  ok  by ")
    assert result.lines()[2].endswith("on gold, golddr")


def test_a_site_that_cannot_be_read_is_unreadable_never_an_empty_history(
    clusters: dict[str, FakeCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    _unreachable(clusters["gold"], monkeypatch)
    result = history_cmd.run(ENVIRONMENTS)
    assert result.ok and result.records == ()
    assert result.lines() == [
        "gold: UNREADABLE: patroni-rolegen: cannot reach the cluster of context gold: i/o timeout",
        "golddr: 0 record(s)", "no role change recorded on golddr"]


def test_history_as_json_through_the_cli(clusters: dict[str, FakeCluster], monkeypatch: pytest.MonkeyPatch) -> None:
    _record(clusters["golddr"], _entry(1, lsn=83886176))
    _unreachable(clusters["gold"], monkeypatch)
    out = CliRunner().invoke(app, ["history", "-f", "json", "--dir", str(ENVIRONMENTS)])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["sites"]["gold"] == {"read": False, "records": 0,
                                     "error": "patroni-rolegen: cannot reach the cluster of context gold: i/o timeout"}
    assert data["sites"]["golddr"] == {"read": True, "records": 1, "error": None}
    assert data["history"] == [{**_entry(1, lsn=83886176), "sites": ["golddr"]}]


def test_history_exits_1_when_no_site_could_be_read(clusters: dict[str, FakeCluster],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for cluster in clusters.values():
        _unreachable(cluster, monkeypatch)
    out = CliRunner().invoke(app, ["history", "--dir", str(ENVIRONMENTS)])
    assert out.exit_code == 1
    assert "no site could be read" in out.stdout and "gold: UNREADABLE" in out.stdout


def test_a_missing_workspace_is_an_error_exit_1(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["history", "--dir", str(tmp_path / "none")])
    assert out.exit_code == 1 and "error:" in out.output

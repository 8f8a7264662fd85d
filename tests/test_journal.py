"""A role change's Kubernetes Events (rolegen.cluster.events) and history record (rolegen.cluster.history), as the
procedures mark their steps (rolegen.procedures.journal): on both sites, best effort, never in the way."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.fake_sites import FakeCluster, FakeSite, sites
from tests.fake_witness import FakeWitness, unanswered
from tests.test_witness_role_changes import Handover

from rolegen import __version__
from rolegen.cluster import events
from rolegen.cluster.history import HISTORY, entries_of
from rolegen.cluster.kubectl import ClusterUnreachable
from rolegen.commands import roles
from rolegen.errors import RolegenError
from rolegen.procedures import failback, reseed, switchover
from rolegen.procedures.base import Pair, load_pair
from rolegen.procedures.journal import Journal, outcome_of
from rolegen.procedures.switchover import SwitchoverResult


def _kube_events(site: FakeSite, cluster: FakeCluster, fail: Exception | None = None,
                 wait: threading.Event | None = None) -> list[dict[str, Any]]:
    """Give `cluster` the Event write a real Cluster has; the list keeps what it wrote."""
    written: list[dict[str, Any]] = []

    def create_event(body: dict[str, Any], seconds: float) -> None:
        if wait is not None:
            wait.wait(30)
        if fail is not None:
            raise fail
        written.append(body)

    cluster.create_event = create_event  # type: ignore[attr-defined]
    return written


def _reasons(written: list[dict[str, Any]]) -> list[str]:
    return [body["reason"] for body in written]


def _history(site: FakeSite) -> list[dict[str, Any]]:
    return entries_of(site.objects.get(("ConfigMap", f"{site.spec.scope}-rolegen")))


def _with_events(pair: Pair, fail: dict[str, Exception] | None = None) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for env, cluster in pair.clusters.items():
        assert isinstance(cluster, FakeCluster)
        out[env] = _kube_events(cluster.site, cluster, (fail or {}).get(env))
    return out


@pytest.fixture(autouse=True)
def _no_catch_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reseed, "_catch_up", lambda run: None)  # as tests/test_reseed.py


def test_a_reseed_tells_each_step_on_both_sites_and_records_itself_on_both() -> None:
    pair, golddr, gold = sites("golddr")
    written = _with_events(pair)
    lines: list[str] = []
    journal = pair.journal = Journal.begin(pair, "reseed", lines.append)
    reseed.run(pair, confirm=lambda _: None, timeout=5)
    journal.finish()
    steps = ["RoleChangeStarted", "RoleChangeFenced", "Reseeded", "RoleChangeSucceeded"]
    assert _reasons(written["gold"]) == _reasons(written["golddr"]) == steps
    first = written["golddr"][1]
    assert first["involvedObject"] == {"apiVersion": "v1", "kind": "ConfigMap", "name": "patroni-config",
                                       "namespace": golddr.spec.namespace}
    assert (first["type"], first["source"]["component"], first["reportingComponent"]) == ("Normal", "rolegen",
                                                                                         "rolegen")
    assert first["message"].startswith("reseed gold -> golddr: golddr fenced: no member accepts writes; at ")
    assert written["gold"][1]["involvedObject"]["namespace"] == gold.spec.namespace
    [here], [there] = _history(golddr), _history(gold)
    assert here == there
    assert (here["verb"], here["from"], here["to"], here["outcome"], here["rolegen"]) == (
        "reseed", "gold", "golddr", "ok", __version__)
    assert set(here["timings"]) == {"fenced", "streaming"} and here["who"] and here["host"]
    assert lines == []


def test_an_event_write_that_fails_warns_once_and_the_role_change_goes_on() -> None:
    pair, golddr, gold = sites("golddr")
    written = _with_events(pair, {"gold": unanswered()})
    lines: list[str] = []
    journal = pair.journal = Journal.begin(pair, "reseed", lines.append)
    reseed.run(pair, confirm=lambda _: None, timeout=5)
    journal.finish()
    assert written["gold"] == [] and _reasons(written["golddr"])[-1] == "RoleChangeSucceeded"
    assert [line for line in lines if line.startswith("warning:")] == [
        "warning: Kubernetes Events not written on gold (cannot reach the cluster of context witness: i/o timeout); "
        "the role change goes on (its history is written apart)"]
    assert len(_history(gold)) == len(_history(golddr)) == 1  # the history is written apart


def test_an_event_write_that_hangs_holds_up_no_step(monkeypatch: pytest.MonkeyPatch) -> None:
    pair, golddr, _ = sites("golddr")
    release = threading.Event()
    for cluster in pair.clusters.values():
        assert isinstance(cluster, FakeCluster)
        _kube_events(cluster.site, cluster, wait=release)
    lines: list[str] = []
    journal = pair.journal = Journal.begin(pair, "reseed", lines.append)
    started = time.monotonic()
    reseed.run(pair, confirm=lambda _: None, timeout=5)
    monkeypatch.setattr(events, "CLOSE_SECONDS", 0.1)
    journal.finish()
    assert time.monotonic() - started < 5
    release.set()
    assert "Kubernetes Event(s) not written in time; the history holds the run" in lines[-1]
    assert _history(golddr)[0]["outcome"] == "ok"


def test_a_switchover_rolled_back_says_so_in_an_event_and_its_record(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWitness("gold")
    fake.reads = [unanswered()] * 1000
    run = Handover(monkeypatch, fake)
    fakes = {spec.environment: FakeSite(spec, leads=spec.environment == "gold")
             for spec in (run.pair.to, run.pair.other)}
    run.pair.clusters = {env: FakeCluster(site) for env, site in fakes.items()}  # type: ignore[misc]
    written = _with_events(run.pair)
    journal = run.pair.journal = Journal.begin(run.pair, "switchover", run.log.append)
    with pytest.raises(RolegenError) as caught:
        run.run()
    journal.finish(caught.value)
    for env in ("gold", "golddr"):
        assert _reasons(written[env]) == ["RoleChangeStarted", "RolledBack"]
        assert written[env][-1]["type"] == "Warning"
        assert written[env][-1]["message"].startswith("switchover gold -> golddr: rolled-back: the witness lease")
        [record] = _history(fakes[env])
        assert record["outcome"] == "rolled-back" and "gold was promoted back" in record["error"]


@pytest.mark.parametrize(("error", "marks", "outcome"), [
    (None, set(), "ok"),
    (RolegenError("preflight failed"), set(), "refused"),
    (RolegenError("aborted: nothing was changed"), {"witness_check"}, "refused"),
    (RolegenError("gold is fenced but a member may still accept writes"), {"demote_written"}, "error"),
    (RolegenError("gate not reached; gold was promoted back"), {"demoted", "rolled_back"}, "rolled-back"),
    (KeyboardInterrupt(), set(), "error"),
])
def test_the_outcome_of_a_run(error: BaseException | None, marks: set[str], outcome: str) -> None:
    assert outcome_of(error, marks) == outcome


# -- through the verbs' wiring (rolegen.commands.roles): every run journals itself, refused ones too ---------------
def _procedure(marks: list[tuple[str, dict[str, Any]]], error: RolegenError | None = None) -> Callable[..., Any]:
    def run(pair: Pair, **_: Any) -> SwitchoverResult:
        for mark, facts in marks:
            pair.note(**facts)
            pair.mark(mark)
        if error is not None:
            raise error
        pair.note(new_timeline=5)  # what settle_promotion notes
        return SwitchoverResult(pair.to.environment, pair.other.environment)

    return run


@pytest.fixture
def fake_sites(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[FakeSite, list[dict[str, Any]]]]:
    made: dict[str, tuple[FakeSite, list[dict[str, Any]]]] = {}

    def load(env_dir: Path, to: str, **kwargs: Any) -> Pair:
        pair = load_pair(env_dir, to, log=kwargs.get("log", print))
        clusters = {}
        for spec in (pair.to, pair.other):
            site = FakeSite(spec, leads=spec.environment == "gold")
            clusters[spec.environment] = cluster = FakeCluster(site)
            made[spec.environment] = (site, _kube_events(site, cluster))
        pair.clusters = clusters  # type: ignore[assignment]
        return pair

    monkeypatch.setattr(roles, "load_pair", load)
    return made


HANDOVER = [("demote_written", {}), ("demoted", {}), ("gate", {"lsn": 83886176, "timeline": 4}),
            ("promote_written", {}), ("promoted", {}), ("verified", {})]


def test_a_switchover_leaves_each_step_in_order_and_one_record_on_both_sites(
    fake_sites: dict[str, tuple[FakeSite, list[dict[str, Any]]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(switchover, "run", _procedure(HANDOVER))
    roles.run_switchover(Path("environments"), roles.RoleOptions(to="golddr"), lambda _: True, lambda _: None)
    expected = ["RoleChangeStarted", "DemoteWritten", "RoleChangeFenced", "LsnGatePassed", "PromotionWritten",
                "Promoted", "Verified", "RoleChangeSucceeded"]
    for env in ("gold", "golddr"):
        site, written = fake_sites[env]
        assert _reasons(written) == expected
        assert [body["metadata"]["name"] for body in written] == sorted(body["metadata"]["name"] for body in written)
        assert "golddr replayed gold's final LSN (LSN 83886176, timeline 4)" in written[3]["message"]
        [record] = _history(site)
        assert (record["outcome"], record["lsn"], record["gate_timeline"], record["timeline"]) == ("ok", 83886176, 4, 5)
        assert record["writes_unavailable_s"] == round(record["timings"]["promoted"]
                                                       - record["timings"]["demote_written"], 3)
        assert record["started"] <= record["ended"] and record["started"].endswith("Z")


def test_a_refused_switchover_is_an_event_and_a_record_too(
    fake_sites: dict[str, tuple[FakeSite, list[dict[str, Any]]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(switchover, "run", _procedure([], RolegenError("preflight failed: gold is paused")))
    with pytest.raises(RolegenError):
        roles.run_switchover(Path("environments"), roles.RoleOptions(to="golddr"), lambda _: True, lambda _: None)
    for env in ("gold", "golddr"):
        site, written = fake_sites[env]
        assert _reasons(written) == ["RoleChangeStarted", "Refused"] and written[1]["type"] == "Warning"
        assert written[1]["message"] == "switchover gold -> golddr: refused: preflight failed: gold is paused"
        [record] = _history(site)
        assert (record["outcome"], record["error"]) == ("refused", "preflight failed: gold is paused")
        annotations = site.objects[("ConfigMap", "patroni-rolegen")]["metadata"]["annotations"]
        assert json.loads(annotations[HISTORY]) == [record]


def test_a_site_whose_history_write_fails_is_one_warning(
    fake_sites: dict[str, tuple[FakeSite, list[dict[str, Any]]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(switchover, "run", _procedure(HANDOVER))
    lines: list[str] = []
    real = FakeCluster.merge_patch

    def merge_patch(self: FakeCluster, kind: str, name: str, patch: dict[str, Any], **kw: Any) -> str:
        if self.site.spec.environment == "gold" and HISTORY in patch["metadata"]["annotations"]:
            raise ClusterUnreachable("cannot reach the cluster of context gold: i/o timeout")
        return real(self, kind, name, patch, **kw)

    monkeypatch.setattr(FakeCluster, "merge_patch", merge_patch)
    roles.run_switchover(Path("environments"), roles.RoleOptions(to="golddr"), lambda _: True, lines.append)
    assert _history(fake_sites["gold"][0]) == [] and len(_history(fake_sites["golddr"][0])) == 1
    assert [line for line in lines if line.startswith("warning:")] == [
        "warning: role-change history not written on gold (cannot reach the cluster of context gold: i/o timeout)"]


def test_a_failback_by_reseed_tells_the_reseed_too_and_a_failure_after_writes_is_an_error() -> None:
    """The fake sites re-seed gold; the switch back's preflight then fails on them (the fakes carry no system id
    for a wiped site): a run that stops after it changed a site is an error, not a refusal."""
    pair, gold, golddr = sites("gold")
    written = _with_events(pair)
    journal = pair.journal = Journal.begin(pair, "failback", lambda _: None)
    with pytest.raises(RolegenError) as caught:
        failback.run(pair, method="reseed", confirm=lambda _: None, timeout=5)
    journal.finish(caught.value)
    reasons = _reasons(written["gold"])
    assert reasons == _reasons(written["golddr"])
    assert reasons[:4] == ["RoleChangeStarted", "RoleChangeFenced", "Reseeded", "Repaired"]
    assert (reasons[-1], written["gold"][-1]["type"]) == ("RoleChangeFailed", "Warning")
    assert written["gold"][2]["message"].startswith("failback golddr -> gold: gold cloned again from golddr")
    assert [(r["verb"], r["outcome"]) for r in _history(gold)] == [("failback", "error")]
    assert _history(gold) == _history(golddr)

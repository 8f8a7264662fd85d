"""The standby guard as the chart's Pod (issue 23): a lab with automatic failover whose standby guards are the
chart's `witnessGuard.standby` Deployment (`rolegen lab up --automatic --guard-pods`), made into Pods by the real
Deployment and ReplicaSet controllers and run by the node agent. Its own site it reaches only with its
ServiceAccount's token, so the chart's Role is all it may do there.

What a user would notice: each site's guard Pod Ready; the standby's Pod granting the leader's promises through the
tunnel (and unreachable with the tunnel cut), so a leader cut from the witness runs on without an outage; the
leader site lost, the standby's Pod failing over within the bound with nothing lost outside the loss window, never
two writable primaries, its decisions as Events naming the Pod, no restart of it; and `rolegen failback` back to
the baseline (after the operator records the roles the Pod's failover recorded in its own copy of the specs).

Marked `matrix` like the partition matrix (its bounds are timings: CI runs it after the suite, on a machine left to
it); the scenarios are the matrix's own (rolegen_lab.drills.witness_scenarios) through the Drill runner."""

from __future__ import annotations

import datetime
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.lab.test_witness_matrix import CRITERIA, Matrix, lab_matrix

from rolegen_lab.drills.report import Report
from rolegen_lab.lab import Lab
from rolegen_lab.node.guardpods import COMPONENT_LABEL, GUARD_COMPONENT

pytestmark = [pytest.mark.lab, pytest.mark.matrix]
READY_WITHIN = 60.0  # seconds from the Pod's creation to Ready (measured: see the README)
SELECTOR = f"{COMPONENT_LABEL}={GUARD_COMPONENT}"


@pytest.fixture(scope="module")
def pods() -> Iterator[Matrix]:
    yield from lab_matrix(standby_guards="pod")


def lab_of(matrix: Matrix) -> Lab:
    return matrix.lab or matrix.start()


def guard_pods(lab: Lab, site: str) -> list[dict[str, Any]]:
    api = lab.sites[site].api
    found: list[dict[str, Any]] = api.request("GET", api.path("pods") + f"?labelSelector={SELECTOR}")["items"]
    return found


def stamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def ask_promise(lab: Lab, site: str) -> dict[str, Any] | None:
    """POST /promise to `site`'s guard as its peer's leader guard does: through the tunnel's guard port."""
    link = lab.sites[site].guard_link
    assert link is not None
    host, port = link.address
    request = urllib.request.Request(f"http://{host}:{port}/promise", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=3) as answer:
            granted: dict[str, Any] = json.loads(answer.read())
            return granted
    except (OSError, urllib.error.URLError):
        return None


def test_each_sites_guard_is_the_charts_pod_made_by_the_real_controllers_and_ready(pods: Matrix) -> None:
    lab = lab_of(pods)
    assert lab.guards is None and lab.info()["standby_guards"] == "pod"  # no guard process of the lab's own
    assert lab.info()["guards"] == {site: True for site in lab.sites}
    for site in lab.sites:
        [pod] = guard_pods(lab, site)
        [owner] = pod["metadata"]["ownerReferences"]
        assert owner["kind"] == "ReplicaSet"  # the Deployment controller's, then the ReplicaSet controller's Pod
        conditions = {c["type"]: c for c in pod["status"]["conditions"]}
        assert conditions["Ready"]["status"] == "True", pod["status"]
        ready = (stamp(conditions["Ready"]["lastTransitionTime"]) - stamp(pod["metadata"]["creationTimestamp"]))
        print(f"{site}: guard Pod {pod['metadata']['name']} Ready {ready.total_seconds():.0f} s after its creation")
        assert ready.total_seconds() <= READY_WITHIN
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
        assert pod["spec"]["serviceAccountName"].endswith("-guard")


def test_the_standbys_guard_pod_grants_promises_through_the_tunnel_and_a_cut_tunnel_cuts_it(pods: Matrix) -> None:
    lab = lab_of(pods)
    standby = next(site for site in lab.sites if site != lab.baseline)
    assert ask_promise(lab, standby) == {"granted": True}
    lab.cut()
    try:
        assert ask_promise(lab, standby) is None
    finally:
        lab.heal()
    deadline = time.monotonic() + 10
    while ask_promise(lab, standby) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ask_promise(lab, standby) == {"granted": True}


@pytest.mark.parametrize("criterion", CRITERIA, ids=[c.__name__ for c in CRITERIA])
def test_the_leader_cut_from_the_witness_runs_on_the_pods_promises(pods: Matrix,
                                                                   criterion: Callable[[Report], None]) -> None:
    report = pods.report("auto-leader-witness-link")
    criterion(report)
    if criterion is CRITERIA[0]:
        print(f"auto-leader-witness-link: {report.acknowledged} writes, {len(report.lost)} lost, longest write gap "
              f"{report.longest_gap:.2f} s")


@pytest.mark.parametrize("criterion", CRITERIA, ids=[c.__name__ for c in CRITERIA])
def test_the_leader_site_lost_the_standbys_guard_pod_fails_over(pods: Matrix,
                                                                criterion: Callable[[Report], None]) -> None:
    report = pods.report("auto-site-loss")
    criterion(report)
    if criterion is CRITERIA[0]:
        print(f"auto-site-loss: standby leads {report.marks['promoted'] - report.marks['fault']:.1f} s after the "
              f"fault; {len(report.lost)} lost, {len(report.lost_in_window)} inside the loss window; longest write "
              f"gap {report.longest_gap:.1f} s")


def test_the_failover_ran_in_the_guard_pod_and_its_events_name_it(pods: Matrix) -> None:
    """The standby's Pod ran the failover steps itself: with its ServiceAccount it wrote its decisions and the role
    change's as Events on its site (the Role's `events create`, the promotion's configmaps `patch`), naming the Pod,
    and it never restarted."""
    pods.report("auto-site-loss")
    lab = lab_of(pods)
    standby = next(site for site in lab.sites if site != lab.baseline)
    [pod] = guard_pods(lab, standby)
    name = pod["metadata"]["name"]
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    api = lab.sites[standby].api
    events = api.request("GET", api.path("events"))["items"]
    by_pod = {e["reason"] for e in events if e.get("reportingInstance") == name}
    assert {"WitnessLeaseTaken", "AutomaticFailoverStarted", "Promoted", "AutomaticFailoverSucceeded"} <= by_pod, (
        sorted(by_pod), lab.sites[standby].agent.guards.log(name)[-3000:])

"""The witness site on the lab (rolegen_lab.controlplane.witness): a third real API server holding the witness
Lease, reached by each party over its own route, and the faults of each link and of the witness itself, shown with
the product's Lease client (rolegen.witness.lease) as the guards will use it. The witness joins the lane's shared
lab for this module only (start_witness: one more control plane, no second lab)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from rolegen.cluster.kubectl import Cluster, ClusterError, ClusterUnreachable
from rolegen.witness.lease import WitnessLease, WitnessView
from rolegen_lab.control.channel import LocalControl
from rolegen_lab.controlplane.witness import CONTEXT, NAMESPACE, OPERATOR, WitnessSite
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab
SITES = ("gold", "golddr")


@pytest.fixture(scope="module")
def witness(lab: Lab) -> Iterator[WitnessSite]:
    site = lab.start_witness()
    try:
        yield site
    finally:
        lab.stop_witness()  # the shared lab goes on as it came


def route(lab: Lab, party: str) -> Cluster:
    """kubectl access to the witness over `party`'s route, as its guard (or the operator) has it."""
    witness = lab.witness
    assert witness is not None
    kubeconfig = lab.kubeconfig if party == OPERATOR else witness.kubeconfig(party)
    # A guard's request timeout (rolegen.witness.rules Timers: 4 s): a cut route fails within it.
    return Cluster(NAMESPACE, CONTEXT, kubeconfig, lab.root / "kube-cache", request_timeout=4)


def lease(lab: Lab, party: str, name: str) -> WitnessLease:
    return WitnessLease(route(lab, party), name, duration=30)


def test_the_witness_runs_beside_the_sites_with_a_route_and_kubeconfig_per_party(lab: Lab, witness: WitnessSite
                                                                                 ) -> None:
    state = json.loads((lab.root / "state.json").read_text())
    assert state["witness"]["namespace"] == NAMESPACE and set(state["witness"]["routes"]) == {*SITES, OPERATOR}
    for site in SITES:
        path = witness.kubeconfig(site)
        assert path.stat().st_mode & 0o777 == 0o600
        assert yaml.safe_load(path.read_text())["clusters"][0]["cluster"]["server"] == witness.routes[site].url
    for path, server in ((lab.kubeconfig, witness.routes[OPERATOR].url), (lab.kubeconfig_direct, witness.plane.url)):
        contexts = {c["name"]: c for c in yaml.safe_load(path.read_text())["clusters"]}
        assert contexts[CONTEXT]["cluster"]["server"] == server and set(SITES) < set(contexts)
    assert not (witness.plane.directory / "kube-controller-manager.log").exists()  # etcd + API server only
    assert lab.faults()["witness"] == {"lost": False, "operator_link": None}


def test_each_sites_route_creates_renews_and_takes_the_lease(lab: Lab, witness: WitnessSite) -> None:
    gold, golddr = lease(lab, "gold", "routes"), lease(lab, "golddr", "routes")
    gold.create("gold")
    seen = golddr.read()
    assert seen.holder == "gold" and seen.version is not None
    renewed = gold.renew("gold", gold.read(), lsn=4096)
    assert golddr.read() == renewed and renewed.lsn == 4096
    taken = golddr.take("golddr", golddr.read())
    assert lease(lab, OPERATOR, "routes").read() == taken == WitnessView("golddr", taken.version, 4096, 1)
    back = gold.take("gold", gold.read())  # and back, over gold's route
    assert golddr.read() == back and back.transitions == 2


def test_a_link_cut_both_ways_fails_its_route_only(lab: Lab, witness: WitnessSite) -> None:
    control = LocalControl(lab)
    gold, golddr = lease(lab, "gold", "cut"), lease(lab, "golddr", "cut")
    gold.create("gold")
    assert control.request("witness_cut", site="gold") == "gold"
    assert lab.faults()["gold"]["witness_link"] == "both" and lab.faults()["golddr"]["witness_link"] is None
    with pytest.raises(ClusterUnreachable):
        gold.read()
    renewed = golddr.renew("gold", golddr.read(), lsn=1)  # the other route still works (any writer may use it)
    assert control.request("witness_heal") == ["gold"]
    assert gold.read() == renewed


def test_one_way_cuts_an_applied_renewal_whose_answer_is_lost_and_a_take_that_never_arrives(
        lab: Lab, witness: WitnessSite) -> None:
    """gold's answers dropped, golddr's requests dropped, at once: gold's renewal is applied (the rules count it
    from the request sent) though gold hears nothing; golddr's take, computed from the same view, never reaches
    the witness."""
    control = LocalControl(lab)
    gold, golddr = lease(lab, "gold", "one-way"), lease(lab, "golddr", "one-way")
    gold.create("gold")
    seen = gold.read()
    control.request("witness_cut", site="gold", direction="answers")
    control.request("witness_cut", site="golddr", direction="requests")
    assert (lab.faults()["gold"]["witness_link"], lab.faults()["golddr"]["witness_link"]) == ("answers", "requests")
    with ThreadPoolExecutor(max_workers=2) as pool:  # the two request timeouts run side by side
        renewing = pool.submit(gold.renew, "gold", seen, 777)
        taking = pool.submit(golddr.take, "golddr", seen)
        with pytest.raises(ClusterError):
            renewing.result()
        with pytest.raises(ClusterUnreachable):
            taking.result()
    now = lease(lab, OPERATOR, "one-way").read()
    assert (now.holder, now.lsn, now.transitions) == ("gold", 777, 0) and now.version != seen.version
    assert sorted(control.request("witness_heal")) == ["gold", "golddr"]
    assert gold.read() == golddr.read() == now


def test_a_witness_loss_fails_every_route_and_a_restore_brings_the_lease_back(lab: Lab, witness: WitnessSite) -> None:
    control = LocalControl(lab)
    gold = lease(lab, "gold", "loss")
    gold.create("gold")
    before = gold.renew("gold", gold.read(), lsn=99)
    control.request("witness_lose")
    control.request("witness_cut", site="golddr")  # a link cut during the loss stays cut after the restore
    assert lab.faults()["witness"]["lost"] is True
    for party in (*SITES, OPERATOR):
        with pytest.raises(ClusterUnreachable):
            lease(lab, party, "loss").read()
    control.request("witness_restore")
    for party in ("gold", OPERATOR):
        assert lease(lab, party, "loss").read() == before
    with pytest.raises(ClusterUnreachable):
        lease(lab, "golddr", "loss").read()
    control.request("witness_lose")
    healed = control.request("heal_all")  # what the drills run: the witness restored, every link healed
    assert healed["witness"]["lost"] is True and healed["golddr"]["witness_link"] == "both"
    assert not witness.lost and lease(lab, "golddr", "loss").read() == before

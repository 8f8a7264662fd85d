"""What the real control plane lets the lab show: the chart's RBAC is what Patroni runs under, Helm 4's
server-side apply meets Patroni's ownership of the `config` annotation, and kubectl's status columns."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import lab_cluster as cluster
from rolegen.cli import app
from rolegen.cluster.helm import Releases
from rolegen.cluster.kubectl import kubectl_binary
from rolegen_lab.lab import LAB_TIMINGS, Lab

pytestmark = pytest.mark.lab
runner = CliRunner()
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
RESOURCES = ("configmaps", "pods", "endpoints", "services", "secrets", "persistentvolumeclaims")


def service_account(lab: Lab, env: str) -> str:
    return f"system:serviceaccount:{lab.sites[env].namespace}:patroni"


def role_rules(lab: Lab, env: str) -> list[dict[str, Any]]:
    role = cluster(lab, env).get("role", "patroni")
    assert role is not None
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def can_i(lab: Lab, env: str, verb: str, resource: str) -> str:
    """`kubectl auth can-i ... --as <Patroni's ServiceAccount>`: "yes" (exit 0) or "no" (exit 1)."""
    c = cluster(lab, env)
    cmd = [kubectl_binary(), "--kubeconfig", str(c.kubeconfig), "--context", str(c.context), "--cache-dir",
           str(c.cache_dir), "-n", c.namespace, "auth", "can-i", verb, resource, "--as", service_account(lab, env)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout.strip()) in ((0, "yes"), (1, "no")), proc.stderr
    return proc.stdout.strip()


def access_reviews(lab: Lab, env: str) -> dict[tuple[str, str], bool]:
    """What the API server's authorizer answers for Patroni's ServiceAccount, every verb on every resource: the
    SubjectAccessReviews `kubectl auth can-i --as` makes, sent in one kubectl run instead of one run each."""
    site = lab.sites[env]
    pairs = [(verb, resource) for verb in VERBS for resource in RESOURCES]
    reviews = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
         "spec": {"user": service_account(lab, env), "resourceAttributes": {
             "namespace": site.namespace, "verb": verb, "resource": resource}}}
        for verb, resource in pairs]}
    out = cluster(lab, env).kubectl("create", "-f", "-", "-o", "json", stdin=json.dumps(reviews))
    decoder, items, at = json.JSONDecoder(), [], 0
    while out[at:].strip():  # one JSON document per review, one after another
        item, end = decoder.raw_decode(out, at + len(out[at:]) - len(out[at:].lstrip()))
        items.append(item)
        at = end
    return {pair: bool(item["status"].get("allowed")) for pair, item in zip(pairs, items, strict=True)}


def test_auth_can_i_as_patronis_service_account_answers_per_the_charts_role(lab: Lab) -> None:
    for env in ("gold", "golddr"):
        rules = role_rules(lab, env)
        answers = access_reviews(lab, env)
        for (verb, resource), allowed in answers.items():
            declared = any(resource in r["resources"] and verb in r["verbs"] for r in rules)
            assert allowed == declared, (env, verb, resource)
        # and as an operator asks it, for one answer of each kind
        granted = next(pair for pair, allowed in answers.items() if allowed)
        denied = next(pair for pair, allowed in answers.items() if not allowed)
        assert (can_i(lab, env, *granted), can_i(lab, env, *denied)) == ("yes", "no")


def test_kubectl_get_pods_shows_ready_status_and_restarts(lab: Lab) -> None:
    table = cluster(lab, "gold").kubectl("get", "pods").splitlines()
    assert table[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = [line.split() for line in table[1:]]
    assert [r[0] for r in rows] == ["patroni-0", "patroni-1"]
    assert all(r[1] == "1/1" and r[2] == "Running" and r[3].isdigit() for r in rows)


def _set_configmap_verbs(lab: Lab, env: str, verbs: list[str]) -> None:
    index = next(i for i, r in enumerate(role_rules(lab, env)) if "configmaps" in r["resources"])
    patch = json.dumps([{"op": "replace", "path": f"/rules/{index}/verbs", "value": verbs}])
    cluster(lab, env).kubectl("patch", "role", "patroni", "--type", "json", "-p", patch)


def test_patroni_fails_without_one_verb_of_the_charts_role_and_recovers_with_it(lab: Lab) -> None:
    """Removing `patch` on ConfigMaps: the leader can no longer renew its lock in `<scope>-leader`."""
    original = next(r["verbs"] for r in role_rules(lab, "gold") if "configmaps" in r["resources"])
    leader = next(m for m in lab.sites["gold"].members.values() if m.running and m.rest("/leader")[0] == 200)
    log_start = len(leader.log_tail(10**9))
    _set_configmap_verbs(lab, "gold", [v for v in original if v != "patch"])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "403" not in leader.log_tail(10**9)[log_start:]:
            time.sleep(0.5)
        denied = leader.log_tail(10**9)[log_start:]
        assert "403" in denied and "forbidden" in denied.lower(), denied[-2000:]
        assert can_i(lab, "gold", "get", "configmaps") == "yes"
        # Without its lock renewals the site loses its leader within ttl (20 s in the lab).
        lab.sites["gold"].wait(lambda: lab.patroni_role("gold") is None, 60, "gold without a leader")
    finally:
        _set_configmap_verbs(lab, "gold", original)
    lab.wait_role("gold", "leader", 90)
    lab.wait_role("golddr", "standby-leader", 90)


def config_owners(lab: Lab, env: str) -> list[str]:
    out = cluster(lab, env).kubectl("get", "configmap", "patroni-config", "-o", "json", "--show-managed-fields")
    fields = json.loads(out)["metadata"]["managedFields"]
    return sorted(m["manager"] for m in fields if "f:config" in json.dumps(m.get("fieldsV1", {})))


def patroni_patch_config(lab: Lab, env: str, change: dict[str, Any]) -> None:
    """What `patronictl edit-config` does: Patroni's REST API PATCH /config (with the REST Secret's credentials,
    as patronictl has them); Patroni writes the annotation."""
    leader = next(m for m in lab.sites[env].members.values() if m.running and m.rest("/leader")[0] == 200)
    request = urllib.request.Request(f"http://127.0.0.1:{leader.rest_port}/config", method="PATCH",
                                     data=json.dumps(change).encode(),
                                     headers={"Content-Type": "application/json", **lab.rest_auth()})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def test_helm_upgrade_keeps_the_annotation_patroni_rewrote_and_apply_converges(
    lab: Lab, tmp_path: Path
) -> None:
    gold = cluster(lab, "gold")
    release = Releases(gold).get("patroni")
    assert release is not None
    if "python" not in config_owners(lab, "gold"):
        # Role changes earlier on this shared lab wrote the annotation (kubectl patch): an upgrade with the same
        # values gives Helm its share again (same content: no conflict), as right after an install.
        Releases(gold).upgrade_install("patroni", release.values, config_map="patroni-config")
    # Patroni writes back the same content every loop: Helm (the SDK's field manager "python") keeps the field,
    # and an upgrade with the same values goes through.
    watched_until = time.monotonic() + 2 * LAB_TIMINGS["loop_wait"]  # two Patroni loops must not take it
    while time.monotonic() < watched_until:
        assert "python" in config_owners(lab, "gold")
    Releases(gold).upgrade_install("patroni", release.values)

    patroni_patch_config(lab, "gold", {"maximum_lag_on_failover": 2048})
    lab.sites["gold"].wait(lambda: "python" not in config_owners(lab, "gold"), 30, "Patroni owning the annotation")
    owners = config_owners(lab, "gold")
    assert "python" not in owners, owners
    # A plain helm upgrade, same values: the chart applies the live annotation (lookup), so there is no
    # conflict and Patroni's value stays (before N6 Helm was refused here, then forced back the chart's value).
    upgraded = Releases(gold).upgrade_install("patroni", release.values)
    assert upgraded.status == "deployed"
    assert json.loads(gold.get("configmap", "patroni-config")["metadata"]["annotations"]["config"])[  # type: ignore[index]
        "maximum_lag_on_failover"] == 2048

    env_dir = tmp_path / "environments"
    shutil.copytree(lab.env_dir, env_dir)
    spec = env_dir / "gold.yaml"
    spec.write_text(spec.read_text().replace("interval: 10", "interval: 15"))
    assert runner.invoke(app, ["render", "--env", "gold", "--dir", str(env_dir)]).exit_code == 0
    for directory in (env_dir, lab.env_dir):  # a values change (Helm must run), then back to the lab's specs
        common = ["--env", "gold", "--dir", str(directory), "--kubeconfig", str(lab.kubeconfig)]
        result = runner.invoke(app, ["apply", "--yes", *common])
        assert result.exit_code == 0, result.output
        assert runner.invoke(app, ["diff", "--detailed-exitcode", *common]).exit_code == 0
    final = Releases(gold).get("patroni")
    assert final is not None and final.revision >= upgraded.revision + 2 and final.status == "deployed"
    assert json.loads(gold.get("configmap", "patroni-config")["metadata"]["annotations"]["config"])[  # type: ignore[index]
        "maximum_lag_on_failover"] == 1048576
    lab.wait_role("gold", "leader", 60)


def test_the_witness_lease_refuses_a_stale_renewal_and_a_takeover_races_a_renewal_to_one_winner(lab: Lab) -> None:
    """rolegen.witness.lease on a real API server (a site's, standing for the third site's): every write carries
    the resourceVersion it read, so of a renewal and a takeover computed from the same read exactly one lands."""
    from rolegen.cluster.kubectl import Conflict
    from rolegen.witness.lease import LeaseLost, WitnessLease

    lease = WitnessLease(cluster(lab, "gold"), "rolegen-witness-test", duration=30)
    try:
        lease.create("gold")
        first = lease.read()
        assert (first.holder, first.transitions, first.lsn) == ("gold", 0, None)
        renewed = lease.renew("gold", first, lsn=4096)
        assert renewed.version != first.version and lease.read() == renewed
        assert lease.read().lsn == 4096  # published with the renewal, for the standby's lag limit
        with pytest.raises(Conflict):
            lease.take("golddr", first)  # computed from a read the renewal made stale
        taken = lease.take("golddr", renewed)
        assert lease.read() == taken and (taken.holder, taken.transitions) == ("golddr", 1)
        with pytest.raises(Conflict):
            lease.renew("gold", renewed, lsn=8192)  # the old holder's renewal from before the takeover
        with pytest.raises(LeaseLost):
            lease.renew("gold", taken, lsn=8192)  # and from after it: the lease is golddr's now
        assert lease.read().holder == "golddr"
    finally:
        cluster(lab, "gold").delete("lease", "rolegen-witness-test")

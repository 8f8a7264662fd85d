"""A dependent's shape for each role (rolegen.offline.dependents): what `render` writes and `apply` and the role
verbs converge a site to."""

from __future__ import annotations

from tests.dependents_example import example

from rolegen.offline.dependents import Dependent, dependents_from, hooks_from, merge


def _example() -> dict[str, Dependent]:
    return {d.name: d for d in dependents_from(example()["dependents"])}


def test_a_helm_dependent_gets_its_role_values_merged_over_the_shared_ones() -> None:
    identity = _example()["identity"]
    leader, standby = identity.shape("leader"), identity.shape("standby-leader")
    database = example()["dependents"][0]["values"]["database"]
    assert leader == {"database": database, "replicaCount": 2, "readOnly": False}
    assert standby == {"database": database, "replicaCount": 0}
    assert identity.target == "helm release identity" and identity.release == "identity"


def test_a_workload_dependent_is_a_replicas_merge_patch_per_role() -> None:
    web = _example()["web"]
    assert web.shape("leader") == {"spec": {"replicas": 3}}
    assert web.shape("standby-leader") == {"spec": {"replicas": 0}}
    assert (web.target, web.resource, web.timeout) == ("Deployment web", "deployment", 180.0)


def test_defaults_name_the_workload_and_release_after_the_dependent() -> None:
    [sts, chart] = dependents_from([
        {"name": "queue", "kind": "StatefulSet", "replicas": {"leader": 1, "standby-leader": 0}},
        {"name": "api", "kind": "helm", "chart": "./charts/api"},
    ])
    assert (sts.workload, sts.release, sts.timeout) == ("queue", "", 300.0)
    assert (chart.release, chart.workload, chart.shape("leader")) == ("api", "", {})


def test_merge_keeps_nested_keys_and_replaces_lists_and_scalars_without_touching_its_inputs() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    over = {"a": {"y": [3]}, "b": {"c": 2}}
    assert merge(base, over) == {"a": {"x": 1, "y": [3]}, "b": {"c": 2}}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1} and over == {"a": {"y": [3]}, "b": {"c": 2}}


def test_hooks_by_phase_with_their_default_timeout() -> None:
    hooks = hooks_from({"after_promote": {"command": ["hooks/traffic", "serve"]}})
    assert list(hooks) == ["after_promote"]
    assert (hooks["after_promote"].command, hooks["after_promote"].timeout) == (("hooks/traffic", "serve"), 60.0)
    assert hooks["after_promote"].shown == "hooks/traffic serve"

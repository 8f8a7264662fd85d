"""PATCH flavours over real HTTP: merge, JSON patch (incl. `test`), strategic merge and server-side apply."""

from __future__ import annotations

import json

from emulator_http import Http

CM = "/api/v1/namespaces/default/configmaps"
STS = "/apis/apps/v1/namespaces/default/statefulsets"
TSC = "/apis/porter.devops.gov.bc.ca/v1alpha1/namespaces/default/transportserverclaims"
MERGE, JSONP = "application/merge-patch+json", "application/json-patch+json"
SMP, APPLY = "application/strategic-merge-patch+json", "application/apply-patch+yaml"


def _sts(api: Http) -> None:
    api("POST", STS, {"metadata": {"name": "db"}, "spec": {"replicas": 1, "template": {"spec": {
        "containers": [{"name": "pg", "image": "pg:17", "env": [{"name": "A", "value": "1"}]},
                       {"name": "exporter", "image": "exp:1"}]}}}})


def test_merge_patch_sets_and_removes_keys(api: Http) -> None:
    api("POST", CM, {"metadata": {"name": "m", "annotations": {"keep": "1", "drop": "2"}}, "data": {"a": "1"}})
    out = api("PATCH", f"{CM}/m", {"metadata": {"annotations": {"drop": None, "new": "3"}}, "data": {"b": "2"}},
              MERGE).body
    assert out["metadata"]["annotations"] == {"keep": "1", "new": "3"}
    assert out["data"] == {"a": "1", "b": "2"}


def test_json_patch_operations_and_test_guard(api: Http) -> None:
    api("POST", CM, {"metadata": {"name": "j"}, "data": {"a": "1", "b": "2"}})
    ops = [{"op": "test", "path": "/data/a", "value": "1"}, {"op": "replace", "path": "/data/a", "value": "9"},
           {"op": "remove", "path": "/data/b"}, {"op": "add", "path": "/data/c~1d", "value": "x"},
           {"op": "copy", "from": "/data/a", "path": "/data/e"}, {"op": "move", "from": "/data/e", "path": "/data/f"}]
    assert api("PATCH", f"{CM}/j", ops, JSONP).body["data"] == {"a": "9", "c/d": "x", "f": "9"}
    failed = api("PATCH", f"{CM}/j", [{"op": "test", "path": "/data/a", "value": "1"},
                                      {"op": "remove", "path": "/data/a"}], JSONP)
    assert failed.status == 422
    assert api("GET", f"{CM}/j").body["data"]["a"] == "9"
    assert api("PATCH", f"{CM}/j", [{"op": "remove", "path": "/data/zzz"}], JSONP).status == 422


def test_json_patch_test_on_resource_version_is_a_compare_and_swap(api: Http) -> None:
    rv = api("POST", CM, {"metadata": {"name": "cas"}}).body["metadata"]["resourceVersion"]
    guarded = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
               {"op": "add", "path": "/data", "value": {"x": "1"}}]
    assert api("PATCH", f"{CM}/cas", guarded, JSONP).status == 200
    assert api("PATCH", f"{CM}/cas", guarded, JSONP).status == 422  # rv moved on


def test_strategic_merge_merges_lists_by_key(api: Http) -> None:
    _sts(api)
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "pg", "image": "pg:18", "env": [{"name": "B", "value": "2"}]},
        {"name": "exporter", "$patch": "delete"},
        {"name": "sidecar", "image": "side:1"}]}}}}
    containers = api("PATCH", f"{STS}/db", patch, SMP).body["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["pg", "sidecar"]
    assert containers[0]["image"] == "pg:18"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


def test_strategic_merge_replace_directive_and_annotation_nulls(api: Http) -> None:
    _sts(api)
    patch = {"metadata": {"annotations": {"a": "1"}},
             "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}}}}
    out = api("PATCH", f"{STS}/db", patch, SMP).body
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["only"]
    out = api("PATCH", f"{STS}/db", {"metadata": {"annotations": {"a": None}}}, SMP).body
    assert not out["metadata"].get("annotations")


def test_strategic_merge_is_refused_for_the_custom_resource(api: Http) -> None:
    api("POST", TSC, {"metadata": {"name": "t"}, "spec": {"service": "pg", "servicePort": 5432}})
    assert api("PATCH", f"{TSC}/t", {"spec": {"servicePort": 1}}, SMP).status == 415
    assert api("PATCH", f"{TSC}/t", {"spec": {"servicePort": 1}}, MERGE).body["spec"]["servicePort"] == 1


def test_server_side_apply_creates_then_merges(api: Http) -> None:
    applied = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n"
    created = api("PATCH", f"{CM}/ssa?fieldManager=test&force=true", raw=applied.encode(), content_type=APPLY)
    assert created.status in (200, 201) and created.body["data"] == {"a": "1"}
    assert created.body["metadata"]["uid"]
    second = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"b": "2"}})
    merged = api("PATCH", f"{CM}/ssa?fieldManager=other", raw=second.encode(), content_type=APPLY).body
    # Approximation: no field ownership, so "a" (owned by another manager) survives.
    assert merged["data"] == {"a": "1", "b": "2"}


def test_unknown_patch_type_is_415(api: Http) -> None:
    api("POST", CM, {"metadata": {"name": "u"}})
    assert api("PATCH", f"{CM}/u", {"data": {}}, "application/x-nonsense").status == 415
    assert api("PATCH", f"{CM}/missing", {"data": {}}, MERGE).status == 404

"""Conformance of the emulated API over real HTTP: discovery, CRUD, metadata, concurrency, selectors."""

from __future__ import annotations

import threading
import time

from emulator_http import Http

from rolegen.lab.emulator import Emulator

CM = "/api/v1/namespaces/default/configmaps"
STS = "/apis/apps/v1/namespaces/default/statefulsets"


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": data}


def sts(name: str, replicas: int = 1) -> dict[str, object]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "pg", "image": "postgres:18"}]}}}}


def test_start_is_fast_and_stop_frees_the_port() -> None:
    started = time.monotonic()
    emu = Emulator(port=0)
    url = emu.start()
    assert time.monotonic() - started < 2
    assert Http(url)("GET", "/version").body["gitVersion"].startswith("v1.")
    emu.stop()
    with Emulator(port=int(url.rsplit(":", 1)[1])) as again:  # the same port is free again
        assert again.url == url


def test_discovery_covers_core_apps_and_the_tsc_group(api: Http) -> None:
    assert api("GET", "/api").body["versions"] == ["v1"]
    groups = {g["name"] for g in api("GET", "/apis").body["groups"]}
    assert {"apps", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
            "porter.devops.gov.bc.ca"} <= groups
    core = {r["name"]: r for r in api("GET", "/api/v1").body["resources"]}
    assert core["configmaps"]["kind"] == "ConfigMap" and core["namespaces"]["namespaced"] is False
    apps = {r["name"]: r for r in api("GET", "/apis/apps/v1").body["resources"]}
    assert apps["statefulsets/scale"]["kind"] == "Scale" and apps["statefulsets/scale"]["group"] == "autoscaling"
    assert "statefulsets/status" in apps
    tsc = api("GET", "/apis/porter.devops.gov.bc.ca/v1alpha1").body["resources"]
    assert tsc[0]["kind"] == "TransportServerClaim"
    assert api("GET", "/apis/porter.devops.gov.bc.ca").body["preferredVersion"]["version"] == "v1alpha1"
    assert api("GET", "/apis/nope.example.com/v1").status == 404


def test_openapi_v3_declares_server_side_field_validation(api: Http) -> None:
    root = api("GET", "/openapi/v3").body["paths"]
    doc = api("GET", root["apis/apps/v1"]["serverRelativeURL"]).body
    patches = [p["patch"] for p in doc["paths"].values()]
    sts_patch = next(p for p in patches if p["x-kubernetes-group-version-kind"]["kind"] == "StatefulSet")
    assert {"name": "fieldValidation", "in": "query"}.items() <= sts_patch["parameters"][0].items()


def test_create_stamps_metadata_with_a_global_increasing_resource_version(api: Http) -> None:
    a = api("POST", CM, cm("a", k="v"))
    b = api("POST", STS, sts("b"))
    assert a.status == 201 and b.status == 201
    meta_a, meta_b = a.body["metadata"], b.body["metadata"]
    assert meta_a["uid"] != meta_b["uid"] and meta_a["creationTimestamp"].endswith("Z")
    assert int(meta_b["resourceVersion"]) > int(meta_a["resourceVersion"])
    assert meta_b["generation"] == 1 and meta_a["namespace"] == "default"
    assert api("POST", CM, cm("a")).body["reason"] == "AlreadyExists"
    assert api("GET", f"{CM}/a").body["data"] == {"k": "v"}


def test_generation_bumps_on_spec_change_only(api: Http) -> None:
    api("POST", STS, sts("db"))
    changed = api("PATCH", f"{STS}/db", {"spec": {"replicas": 2}}, "application/merge-patch+json").body
    assert changed["metadata"]["generation"] == 2
    labelled = api("PATCH", f"{STS}/db", {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json")
    assert labelled.body["metadata"]["generation"] == 2


def test_put_with_stale_resource_version_is_a_conflict(api: Http) -> None:
    created = api("POST", CM, cm("c", k="1")).body
    fresh = {**created, "data": {"k": "2"}}
    updated = api("PUT", f"{CM}/c", fresh)
    assert updated.status == 200 and updated.body["data"] == {"k": "2"}
    stale = api("PUT", f"{CM}/c", {**created, "data": {"k": "3"}})
    assert stale.status == 409 and stale.body["reason"] == "Conflict"
    assert api("PUT", f"{CM}/missing", cm("missing")).status == 404


def test_patch_with_stale_resource_version_is_a_conflict(api: Http) -> None:
    rv = api("POST", CM, cm("p")).body["metadata"]["resourceVersion"]
    api("PATCH", f"{CM}/p", {"data": {"x": "1"}}, "application/merge-patch+json")
    stale = api("PATCH", f"{CM}/p", {"metadata": {"resourceVersion": rv}, "data": {"x": "2"}},
                "application/strategic-merge-patch+json")
    assert stale.status == 409
    assert api("GET", f"{CM}/p").body["data"] == {"x": "1"}


def test_noop_write_keeps_the_resource_version(api: Http) -> None:
    created = api("POST", CM, cm("same", k="v")).body
    again = api("PATCH", f"{CM}/same", {"data": {"k": "v"}}, "application/merge-patch+json").body
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_list_kind_resource_version_and_label_selectors(api: Http) -> None:
    api("POST", CM, cm("one", {"app": "db", "tier": "a"}))
    api("POST", CM, cm("two", {"app": "db", "tier": "b"}))
    api("POST", CM, cm("three", {"app": "web"}))
    listed = api("GET", CM).body
    assert listed["kind"] == "ConfigMapList" and int(listed["metadata"]["resourceVersion"]) > 0

    def names(selector: str) -> set[str]:
        from urllib.parse import quote

        return {i["metadata"]["name"] for i in api("GET", f"{CM}?labelSelector={quote(selector)}").body["items"]}

    assert names("app=db") == names("app==db") == {"one", "two"}
    assert names("app!=db") == {"three"}
    assert names("tier in (a,c)") == {"one"}
    assert names("tier notin (a)") == {"two", "three"}
    assert names("tier") == {"one", "two"}
    assert names("!tier") == {"three"}
    assert names("app=db,tier=b") == {"two"}
    assert api("GET", f"{CM}?labelSelector=%21%21%21").status == 400


def test_field_selectors_and_all_namespace_lists(api: Http) -> None:
    api("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    api("POST", CM, cm("same-name"))
    api("POST", "/api/v1/namespaces/other/configmaps", cm("same-name"))
    everywhere = api("GET", "/api/v1/configmaps?fieldSelector=metadata.name%3Dsame-name").body["items"]
    assert sorted(i["metadata"]["namespace"] for i in everywhere) == ["default", "other"]
    only = api("GET", "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dother").body["items"]
    assert [i["metadata"]["name"] for i in only] == ["same-name"]
    assert api("GET", f"{CM}?fieldSelector=spec.foo%3Dx").status == 400


def test_delete_and_collection_delete(api: Http) -> None:
    for name, tier in (("d1", "x"), ("d2", "x"), ("d3", "y")):
        api("POST", CM, cm(name, {"tier": tier}))
    deleted = api("DELETE", f"{CM}/d3")
    assert deleted.status == 200 and api("GET", f"{CM}/d3").status == 404
    assert api("DELETE", f"{CM}/d3").status == 404
    gone = api("DELETE", f"{CM}?labelSelector=tier%3Dx")
    assert {i["metadata"]["name"] for i in gone.body["items"]} == {"d1", "d2"}
    assert api("GET", CM).body["items"] == []


def test_delete_preconditions(api: Http) -> None:
    rv = api("POST", CM, cm("pre")).body["metadata"]["resourceVersion"]
    api("PATCH", f"{CM}/pre", {"data": {"a": "b"}}, "application/merge-patch+json")
    refused = api("DELETE", f"{CM}/pre", {"kind": "DeleteOptions", "preconditions": {"resourceVersion": rv}})
    assert refused.status == 409 and api("GET", f"{CM}/pre").status == 200


def test_namespaces_gate_creation_and_deletion_removes_contents(api: Http) -> None:
    assert api("POST", "/api/v1/namespaces/nowhere/configmaps", cm("x")).status == 404
    ns = api("POST", "/api/v1/namespaces", {"metadata": {"name": "site-a"}}).body
    assert ns["status"]["phase"] == "Active"
    api("POST", "/api/v1/namespaces/site-a/configmaps", cm("x"))
    api("POST", "/apis/apps/v1/namespaces/site-a/statefulsets", sts("db"))
    api("POST", CM, cm("survivor"))
    assert api("DELETE", "/api/v1/namespaces/site-a").status == 200
    assert api("GET", "/api/v1/namespaces/site-a").status == 404
    assert api("GET", "/api/v1/namespaces/site-a/configmaps/x").status == 404
    assert api("GET", "/apis/apps/v1/statefulsets").body["items"] == []
    assert api("GET", f"{CM}/survivor").status == 200


def test_dry_run_all_changes_nothing(api: Http) -> None:
    dry = api("POST", f"{CM}?dryRun=All", cm("dry"))
    assert dry.status == 200 and dry.body["metadata"]["name"] == "dry"
    assert api("GET", f"{CM}/dry").status == 404
    api("POST", CM, cm("real", k="1"))
    assert api("PATCH", f"{CM}/real?dryRun=All", {"data": {"k": "2"}},
               "application/merge-patch+json").body["data"] == {"k": "2"}
    assert api("DELETE", f"{CM}/real?dryRun=All").status == 200
    assert api("GET", f"{CM}/real").body["data"] == {"k": "1"}


def test_status_subresource_is_separate_from_the_main_resource(api: Http) -> None:
    api("POST", STS, sts("s"))
    main = api("PATCH", f"{STS}/s", {"status": {"replicas": 5}}, "application/merge-patch+json").body
    assert "replicas" not in (main.get("status") or {})
    status = api("PATCH", f"{STS}/s/status", {"status": {"readyReplicas": 1}, "spec": {"replicas": 9}},
                 "application/merge-patch+json").body
    assert status["status"] == {"readyReplicas": 1} and status["spec"]["replicas"] == 1
    assert api("GET", f"{STS}/s/status").body["status"] == {"readyReplicas": 1}
    assert api("GET", f"{CM}/x/status").status == 404  # ConfigMaps have no status subresource


def test_scale_subresource_reads_and_writes_replicas(api: Http) -> None:
    api("POST", STS, sts("db", replicas=1))
    scale = api("GET", f"{STS}/db/scale").body
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == "app=db"
    put = api("PUT", f"{STS}/db/scale", {**scale, "spec": {"replicas": 3}})
    assert put.status == 200 and put.body["spec"]["replicas"] == 3
    patched = api("PATCH", f"{STS}/db/scale", {"spec": {"replicas": 0}}, "application/merge-patch+json")
    assert patched.body["spec"]["replicas"] == 0
    assert api("GET", f"{STS}/db").body["spec"]["replicas"] == 0
    stale = api("PUT", f"{STS}/db/scale", {**scale, "spec": {"replicas": 4}})
    assert stale.status == 409


def test_cluster_scoped_resources_and_unknown_paths(api: Http) -> None:
    role = {"metadata": {"name": "reader"}, "rules": []}
    assert api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", role).status == 201
    assert api("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/reader").status == 200
    assert api("GET", "/api/v1/widgets").status == 404
    assert api("GET", "/api/v1/configmaps/no-namespace").status == 404
    assert api("POST", f"{CM}/x", cm("x")).status == 405
    assert api("POST", CM, raw=b"{not json").status == 400


def test_namespace_in_body_must_match_the_path(api: Http) -> None:
    body = cm("m")
    body["metadata"]["namespace"] = "kube-system"  # type: ignore[index]
    assert api("POST", CM, body).status == 400


def test_concurrent_writers_leader_race_has_exactly_one_winner(api: Http) -> None:
    created = api("POST", CM, cm("leader")).body
    rv = created["metadata"]["resourceVersion"]
    results: list[int] = []

    def race(n: int) -> None:
        body = {"metadata": {"resourceVersion": rv, "annotations": {"leader": f"m{n}"}}}
        results.append(api("PATCH", f"{CM}/leader", body, "application/merge-patch+json").status)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * 7


def test_concurrent_patches_without_resource_version_all_apply(api: Http) -> None:
    api("POST", CM, cm("many"))
    threads = [threading.Thread(target=api, args=("PATCH", f"{CM}/many", {"data": {f"k{n}": "v"}},
                                                  "application/merge-patch+json")) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(api("GET", f"{CM}/many").body["data"]) == {f"k{n}" for n in range(8)}

"""Protobuf request bodies (as client-go/Helm send them) for Secret, ConfigMap, Namespace, DeleteOptions."""

from __future__ import annotations

import base64

from emulator_http import Http

from rolegen.lab.emulator import protobuf

PB = "application/vnd.kubernetes.protobuf"


def test_protobuf_secret_is_stored_as_json_with_base64_data(api: Http) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
              "metadata": {"name": "sh.helm.release.v1.demo.v1", "labels": {"owner": "helm", "name": "demo"},
                           "generateName": "", "resourceVersion": ""},
              "data": {"release": base64.b64encode(b"\x00binary\xff").decode()}}
    created = api("POST", "/api/v1/namespaces/default/secrets", raw=protobuf.encode(secret), content_type=PB)
    assert created.status == 201, created.body
    assert created.content_type.startswith("application/json")
    stored = api("GET", "/api/v1/namespaces/default/secrets/sh.helm.release.v1.demo.v1").body
    assert stored["type"] == "helm.sh/release.v1"
    assert base64.b64decode(stored["data"]["release"]) == b"\x00binary\xff"
    assert stored["metadata"]["labels"] == {"owner": "helm", "name": "demo"}
    assert "generateName" not in stored["metadata"]  # protobuf zero values are not JSON fields


def test_protobuf_configmap_update_and_namespace_create(api: Http) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pb"}}
    assert api("POST", "/api/v1/namespaces", raw=protobuf.encode(ns), content_type=PB).status == 201
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"a": "1"}},
          "data": {"k": "", "x": "y"}}
    created = api("POST", "/api/v1/namespaces/pb/configmaps", raw=protobuf.encode(cm), content_type=PB).body
    assert created["data"] == {"k": "", "x": "y"} and created["metadata"]["annotations"] == {"a": "1"}
    update = {**cm, "metadata": {**cm["metadata"], "resourceVersion": created["metadata"]["resourceVersion"]},
              "data": {"x": "z"}}
    replaced = api("PUT", "/api/v1/namespaces/pb/configmaps/c", raw=protobuf.encode(update), content_type=PB)
    assert replaced.status == 200 and replaced.body["data"] == {"x": "z"}
    stale = api("PUT", "/api/v1/namespaces/pb/configmaps/c", raw=protobuf.encode(update), content_type=PB)
    assert stale.status == 409


def test_protobuf_delete_options_with_preconditions(api: Http) -> None:
    created = api("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "d"}}).body
    wrong = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
             "preconditions": {"uid": "not-the-uid"}}
    assert api("DELETE", "/api/v1/namespaces/default/configmaps/d", raw=protobuf.encode(wrong),
               content_type=PB).status == 409
    right = {**wrong, "preconditions": {"uid": created["metadata"]["uid"]}, "gracePeriodSeconds": 0}
    assert api("DELETE", "/api/v1/namespaces/default/configmaps/d", raw=protobuf.encode(right),
               content_type=PB).status == 200
    assert api("GET", "/api/v1/namespaces/default/configmaps/d").status == 404


def test_unsupported_protobuf_bodies_are_415(api: Http) -> None:
    assert api("POST", "/api/v1/namespaces/default/pods", raw=b"k8s\x00\x0a\x0b\x0a\x02v1\x12\x03Pod",
               content_type=PB).status == 415
    assert api("POST", "/api/v1/namespaces/default/pods", raw=b"not protobuf", content_type=PB).status == 415


def test_decoder_round_trips_negative_and_repeated_fields() -> None:
    options = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": -1, "dryRun": ["All"],
               "orphanDependents": True}
    assert protobuf.decode(protobuf.encode(options)) == options

"""Watch semantics over real HTTP: replay from a resourceVersion, 410 Gone, timeoutSeconds, the
`watch=True/true/1` spellings, selector transitions, bookmarks and the initial-events-end bookmark."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
from emulator_http import Http

from rolegen.lab.emulator import Emulator

CM = "/api/v1/namespaces/default/configmaps"


def cm(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels}}


@pytest.mark.parametrize("spelling", ["True", "true", "1"])
def test_watch_replays_events_after_a_resource_version(api: Http, spelling: str) -> None:
    start = api("GET", CM).body["metadata"]["resourceVersion"]
    api("POST", CM, cm("a"))
    api("PATCH", f"{CM}/a", {"data": {"k": "v"}}, "application/merge-patch+json")
    api("DELETE", f"{CM}/a")
    events = api.watch(f"{CM}?watch={spelling}&resourceVersion={start}&timeoutSeconds=1", max_events=3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(start)


def test_watch_without_resource_version_starts_with_current_objects(api: Http) -> None:
    api("POST", CM, cm("existing"))
    events = api.watch(f"{CM}?watch=true&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "existing")]


def test_watch_streams_live_events_and_ends_at_timeout(api: Http) -> None:
    rv = api("GET", CM).body["metadata"]["resourceVersion"]
    started = time.monotonic()

    def write_later() -> None:
        threading.Timer(0.2, lambda: api("POST", CM, cm("live"))).start()

    events = api.watch(f"{CM}?watch=true&resourceVersion={rv}&timeoutSeconds=1", during=write_later)
    assert [e["object"]["metadata"]["name"] for e in events] == ["live"]
    assert 0.9 <= time.monotonic() - started < 3


def test_too_old_resource_version_is_410_gone(emulator: Emulator, api: Http) -> None:
    rv = api("POST", CM, cm("old")).body["metadata"]["resourceVersion"]
    api("POST", CM, cm("newer"))
    emulator.store.compact()  # what etcd compaction does to old revisions
    gone = api("GET", f"{CM}?watch=true&resourceVersion={rv}")
    assert gone.status == 410 and gone.body["reason"] == "Expired"
    current = api("GET", CM).body["metadata"]["resourceVersion"]
    assert api.watch(f"{CM}?watch=true&resourceVersion={current}&timeoutSeconds=1") == []


def test_watch_honours_selectors_and_reports_transitions(api: Http) -> None:
    rv = api("GET", CM).body["metadata"]["resourceVersion"]
    api("POST", CM, cm("w", role="replica"))
    api("PATCH", f"{CM}/w", {"metadata": {"labels": {"role": "primary"}}}, "application/merge-patch+json")
    api("PATCH", f"{CM}/w", {"metadata": {"labels": {"role": "replica"}}}, "application/merge-patch+json")
    api("POST", CM, cm("other", role="primary"))
    events = api.watch(f"{CM}?watch=1&resourceVersion={rv}&timeoutSeconds=1&labelSelector=role%3Dprimary")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w"), ("DELETED", "w"), ("ADDED", "other")]
    by_name = api.watch(f"{CM}?watch=1&resourceVersion={rv}&timeoutSeconds=1&fieldSelector=metadata.name%3Dother")
    assert [e["object"]["metadata"]["name"] for e in by_name] == ["other"]


def test_watch_is_scoped_to_its_namespace(api: Http) -> None:
    rv = api("GET", CM).body["metadata"]["resourceVersion"]
    api("POST", "/api/v1/namespaces", {"metadata": {"name": "elsewhere"}})
    api("POST", "/api/v1/namespaces/elsewhere/configmaps", cm("far"))
    api("POST", CM, cm("near"))
    events = api.watch(f"{CM}?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert [e["object"]["metadata"]["name"] for e in events] == ["near"]
    everywhere = api.watch(f"/api/v1/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert {e["object"]["metadata"]["name"] for e in everywhere} == {"near", "far"}


def test_send_initial_events_ends_with_the_initial_events_end_bookmark(api: Http) -> None:
    api("POST", CM, cm("first"))
    api("POST", CM, cm("second"))
    events = api.watch(f"{CM}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                       "&allowWatchBookmarks=true&timeoutSeconds=1", max_events=3)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    bookmark = events[-1]["object"]
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert bookmark["kind"] == "ConfigMap"
    assert int(bookmark["metadata"]["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in events[:2])


def test_idle_watch_sends_bookmarks_when_allowed(api: Http, monkeypatch: pytest.MonkeyPatch) -> None:
    from rolegen.lab.emulator import server

    monkeypatch.setattr(server, "BOOKMARK_INTERVAL", 0.2)
    rv = api("GET", CM).body["metadata"]["resourceVersion"]
    events = api.watch(f"{CM}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1")
    assert events and all(e["type"] == "BOOKMARK" for e in events)
    silent = api.watch(f"{CM}?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert silent == []


def test_watch_on_the_deprecated_watch_path(api: Http) -> None:
    rv = api("GET", CM).body["metadata"]["resourceVersion"]
    api("POST", CM, cm("x"))
    api("POST", CM, cm("y"))
    events = api.watch(f"/api/v1/watch/namespaces/default/configmaps/y?resourceVersion={rv}&timeoutSeconds=1")
    assert [e["object"]["metadata"]["name"] for e in events] == ["y"]


def test_stopping_the_emulator_ends_open_watches() -> None:
    emu = Emulator(port=0)
    api = Http(emu.start())
    ended = threading.Event()

    def watch() -> None:
        api.watch(f"{CM}?watch=1&timeoutSeconds=60")
        ended.set()

    thread = threading.Thread(target=watch)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    emu.stop()
    thread.join(timeout=5)
    assert ended.is_set() and time.monotonic() - started < 3


def test_a_watcher_that_hangs_up_is_released(emulator: Emulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", int(emulator.url.rsplit(":", 1)[1]), timeout=5)
    conn.request("GET", f"{CM}?watch=1&timeoutSeconds=60")
    resp = conn.getresponse()
    assert resp.status == 200 and emulator.open_connections == 1
    resp.close()
    conn.close()
    deadline = time.monotonic() + 3
    while emulator.open_connections and time.monotonic() < deadline:
        time.sleep(0.1)
    assert emulator.open_connections == 0

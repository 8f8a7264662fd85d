"""The member's pg_control watcher (chart/files/member_control.py, forked by the startup guard): what it publishes
on its Pod and when. A switchover promotes the other site on its word, so a read that may be torn, and a
Patroni that says anything but `stopping`, must never publish a clean shutdown by Patroni. Real members run it
in the lab (tests/lab/test_lab_failover.py); here its decisions, on what a fake pg_controldata prints."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("member_control", REPO / "chart/files/member_control.py")
assert SPEC is not None and SPEC.loader is not None
member_control = importlib.util.module_from_spec(SPEC)
sys.modules.setdefault("member_control", member_control)
SPEC.loader.exec_module(member_control)


def output(state: str = "in production", checkpoint: str = "0/4000080", timeline: int = 1) -> str:
    """pg_controldata 18's first lines, as it prints them."""
    return (
        "pg_control version number:            1800\n"
        "Catalog version number:               202506291\n"
        "Database system identifier:           7715208679911596472\n"
        f"Database cluster state:               {state}\n"
        "pg_control last modified:             Thu Dec  3 22:30:07 2026\n"
        f"Latest checkpoint location:           {checkpoint}\n"
        "Latest checkpoint's REDO location:    0/4000028\n"
        f"Latest checkpoint's TimeLineID:       {timeline}\n"
    )


class Rig:
    def __init__(self, outputs: list[str | Exception], patroni: str | None = "stopping") -> None:
        self.outputs, self.patroni = list(outputs), patroni
        self.stamp, self.now, self.reads, self.asked = (1, 8192), 0.0, 0, 0
        self.patches: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self.patch_fails = 0
        self.watcher = member_control.Watcher(lambda: self.stamp, self.controldata, self.ask, self.patch,
                                              self.lines.append, clock=lambda: self.now)

    def controldata(self) -> str:
        self.reads += 1
        answer = self.outputs.pop(0) if len(self.outputs) > 1 else self.outputs[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def ask(self) -> str | None:
        self.asked += 1
        return self.patroni

    def patch(self, body: dict[str, Any]) -> None:
        if self.patch_fails:
            self.patch_fails -= 1
            raise OSError("connection refused")
        self.patches.append(json.loads(body["metadata"]["annotations"]["rolegen.io/control"]))


def test_it_publishes_the_state_and_latest_checkpoint() -> None:
    rig = Rig([output()])
    rig.watcher.tick()
    assert rig.patches == [{"state": "in production", "checkpoint": "0/4000080", "timeline": 1, "patroni": None,
                            "system": "7715208679911596472"}]
    assert rig.asked == 0  # Patroni is asked only at a clean shutdown


def test_a_clean_shutdown_is_published_with_patronis_word_at_that_moment() -> None:
    rig = Rig([output(), output("shut down", "0/5000028")], patroni="stopping")
    rig.watcher.tick()
    rig.stamp, rig.now = (2, 8192), 0.05
    rig.watcher.tick()
    assert rig.patches[-1]["state"] == "shut down" and rig.patches[-1]["patroni"] == "stopping"
    assert rig.patches[-1]["checkpoint"] == "0/5000028"


@pytest.mark.parametrize("word", ["restarting", "running", None])
def test_any_other_word_is_published_as_it_is(word: str | None) -> None:
    rig = Rig([output("shut down", "0/5000028")], patroni=word)
    rig.watcher.tick()
    assert rig.patches[-1]["patroni"] == word


def test_nothing_is_read_while_the_file_does_not_change() -> None:
    rig = Rig([output()])
    rig.watcher.tick()
    rig.now = member_control.RECHECK + 1
    for _ in range(5):
        rig.watcher.tick()
    assert rig.reads == 1 and len(rig.patches) == 1


def test_after_a_change_it_reads_again_for_a_while_since_two_writes_may_share_one_mtime() -> None:
    """An idle shutdown checkpoint can follow "shutting down" within one clock tick of the file's mtime."""
    rig = Rig([output(), output("shutting down"), output("shut down", "0/5000028")])
    rig.watcher.tick()
    rig.stamp, rig.now = (2, 8192), 0.05
    rig.watcher.tick()  # shutting down
    rig.now = 0.1
    rig.watcher.tick()  # same mtime: read again anyway
    assert [p["state"] for p in rig.patches] == ["in production", "shutting down", "shut down"]


def test_a_torn_read_publishes_nothing_and_is_tried_again() -> None:
    torn = "WARNING: calculated CRC checksum does not match value stored in file.\n" + output("shut down")
    rig = Rig([torn, output("shut down", "0/5000028")])
    rig.watcher.tick()
    assert rig.patches == [] and rig.lines == [
        "member-control: skipped (read: pg_control's CRC does not match (read while written))"]
    rig.watcher.tick()
    assert rig.patches[-1]["state"] == "shut down"


def test_a_failed_patch_is_tried_again_on_the_next_tick_and_logged_once() -> None:
    rig = Rig([output()])
    rig.patch_fails = 2
    rig.watcher.tick()
    rig.watcher.tick()
    assert rig.patches == [] and len(rig.lines) == 1
    rig.watcher.tick()
    assert len(rig.patches) == 1


def test_no_data_directory_yet_is_skipped() -> None:
    rig = Rig([output()])

    def missing() -> tuple[int, int]:
        raise FileNotFoundError("global/pg_control")

    rig.watcher.stat = missing
    rig.watcher.tick()
    assert rig.patches == [] and rig.reads == 0 and "stat" in rig.lines[0]


@pytest.mark.parametrize("text", ["", output().replace("Latest checkpoint location", "Something else")])
def test_output_without_the_fields_is_no_reading(text: str) -> None:
    with pytest.raises(ValueError):
        member_control.parse(text)


def test_patronis_own_address_is_asked() -> None:
    env = {"PATRONI_RESTAPI_CONNECT_ADDRESS": "10.0.0.7:8008"}
    assert member_control.rest_url({"restapi": {"listen": "0.0.0.0:8008"}}, env) == "http://10.0.0.7:8008/patroni"
    assert member_control.rest_url({"restapi": {"listen": "0.0.0.0:8009", "certfile": "/tls/tls.crt"}}, {}) == \
        "https://127.0.0.1:8009/patroni"

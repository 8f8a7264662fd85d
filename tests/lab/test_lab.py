"""The two-cluster lab end to end: real Patroni, PostgreSQL, kubectl and Helm on real Kubernetes control planes,
configured only by what rolegen renders and the chart deploys."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from conftest import lab_cluster as cluster
from conftest import member_dsn
from rolegen.cli import app
from rolegen_lab.drills.workload import AckWriter, missing_ids
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]


def config_annotation(lab: Lab, env: str) -> dict[str, object]:
    cm = cluster(lab, env).get("configmap", "patroni-config")
    assert cm is not None
    config: dict[str, object] = json.loads(cm["metadata"]["annotations"]["config"])
    return config


def rendered_config(lab: Lab, env: str) -> dict[str, object]:
    import yaml

    patch = yaml.safe_load((lab.env_dir / "generated" / env / "patches" / "patroni-config.yaml").read_text())
    config: dict[str, object] = json.loads(patch["metadata"]["annotations"]["config"])
    return config


def query(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        return list(conn.execute(sql))


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except psycopg.Error:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def test_golddr_streams_as_standby_leader_from_rendered_config(lab: Lab) -> None:
    assert lab.patroni_role("gold") == "leader"
    assert lab.patroni_role("golddr") == "standby-leader"
    # The live DCS config is exactly what rolegen rendered (Patroni may rewrite it in its own key order).
    for env in ("gold", "golddr"):
        assert config_annotation(lab, env) == rendered_config(lab, env)
    initialize = {env: cluster(lab, env).get("configmap", "patroni-config") for env in ("gold", "golddr")}
    ids = {env: cm["metadata"]["annotations"]["initialize"] for env, cm in initialize.items() if cm}
    assert ids["gold"] == ids["golddr"] and ids["gold"].isdigit()


def test_rows_written_on_gold_appear_on_golddr(lab: Lab) -> None:
    with psycopg.connect(lab.dsn("gold"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS lab_rows (v text)")
        conn.execute("INSERT INTO lab_rows VALUES ('written on gold')")
    golddr = member_dsn(lab, "golddr", 0)
    wait_for(lambda: query(golddr, "SELECT v FROM lab_rows") == [("written on gold",)], 20, "row on golddr")
    assert query(golddr, "SELECT pg_is_in_recovery()") == [(True,)]


def test_scale_to_zero_and_back_keeps_the_data(lab: Lab) -> None:
    gold = cluster(lab, "gold")
    before = gold.get("configmap", "patroni-config")
    gold.scale("statefulset", "patroni", 0)
    wait_for(lambda: not any(m.running for m in lab.sites["gold"].members.values()), 30, "gold scaled to 0")
    assert {p["metadata"]["name"] for p in gold.list("pods")} == set()
    gold.scale("statefulset", "patroni", 2)
    lab.wait_role("gold", "leader", 60)
    assert query(lab.dsn("gold"), "SELECT v FROM lab_rows") == [("written on gold",)]
    after = gold.get("configmap", "patroni-config")
    assert before and after
    assert after["metadata"]["annotations"]["initialize"] == before["metadata"]["annotations"]["initialize"]


def test_deleting_a_pvc_and_scaling_up_reclones_the_member(lab: Lab) -> None:
    gold = cluster(lab, "gold")
    gold.scale("statefulset", "patroni", 1)
    site = lab.sites["gold"]
    wait_for(lambda: not site.members[1].running, 30, "patroni-1 stopped")
    lab.wait_role("gold", "leader", 60)  # patroni-1 may have been the leader: patroni-0 takes over
    gold.delete("pvc", "data-patroni-1")
    wait_for(lambda: not site.members[1].data.exists(), 10, "patroni-1's volume wiped")
    with psycopg.connect(lab.dsn("gold"), autocommit=True) as conn:
        conn.execute("INSERT INTO lab_rows VALUES ('while patroni-1 was gone')")
    gold.scale("statefulset", "patroni", 2)
    member = member_dsn(lab, "gold", 1)
    wait_for(lambda: len(query(member, "SELECT v FROM lab_rows")) == 2, 60, "patroni-1 re-cloned with both rows")
    assert query(member, "SELECT pg_is_in_recovery()") == [(True,)]
    assert gold.get("pvc", "data-patroni-1") is not None
    # The standby site followed gold through all of it (including gold's own leader change).
    golddr = member_dsn(lab, "golddr", 0)
    wait_for(lambda: len(query(golddr, "SELECT v FROM lab_rows")) == 2, 60, "golddr caught up")


def _optime(lab: Lab, env: str) -> int:
    leader = cluster(lab, env).get("configmap", "patroni-leader")
    assert leader is not None
    return int(leader["metadata"]["annotations"].get("optime", 0))


def _replayed(lab: Lab, env: str) -> int:
    for state in lab.sites[env].member_states().values():
        if state.get("role") in ("standby_leader", "primary"):
            xlog = state.get("xlog", {})
            return int(xlog.get("replayed_location", xlog.get("location", 0)))
    return 0


def _declare(lab: Lab, env: str, role: str) -> None:
    """rolegen render --role, then the generated patch applied with real kubectl."""
    result = CliRunner().invoke(app, ["render", "--dir", str(lab.env_dir), "--env", env, "--role", role])
    assert result.exit_code == 0, result.output
    patch = lab.env_dir / "generated" / env / "patches" / "patroni-config.yaml"
    cluster(lab, env).kubectl("patch", "configmap", "patroni-config", "--type", "merge", "--patch-file", str(patch))


def _move(lab: Lab, src: str, dst: str) -> None:
    """The safe order by hand, with rolegen's rendered patches and real kubectl: demote, LSN gate, promote."""
    _declare(lab, src, "standby-leader")
    wait_for(lambda: lab.patroni_role(src) == "standby-leader", 60, f"{src} demoted")
    final = _optime(lab, src)
    wait_for(
        lambda: _replayed(lab, dst) >= final > 0,
        30,
        f"{dst} replayed {src}'s final LSN {final}: {lab.sites[dst].member_states()} {lab.sites[src].member_states()}",
    )
    _declare(lab, dst, "leader")
    lab.wait_role(dst, "leader", 60)
    lab.wait_role(src, "standby-leader", 60)


def test_rendered_patches_move_the_leader_and_back_without_losing_a_write(lab: Lab) -> None:
    timeline = lambda env: max(int(s.get("timeline", 0)) for s in lab.sites[env].member_states().values())  # noqa: E731
    start = timeline("gold")
    with AckWriter([lab.dsn("gold"), lab.dsn("golddr")]) as writer:
        time.sleep(1)
        _move(lab, "gold", "golddr")
        assert timeline("golddr") == start + 1
        wait_for(lambda: timeline("gold") == start + 1, 30, "gold following golddr's new timeline")
        time.sleep(1)
        _move(lab, "golddr", "gold")
        time.sleep(1)
    log = writer.log
    assert len(log.acknowledged) > 100
    assert missing_ids(lab.dsn("gold"), log.acknowledged) == []
    assert timeline("gold") == start + 2

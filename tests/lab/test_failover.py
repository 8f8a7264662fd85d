"""Unplanned failover, fencing and failback on the lab, with a writer recording acknowledged commits."""

from __future__ import annotations

import time

import pytest

from conftest import lab_pair as pair
from rolegen.lab.lab import Lab
from rolegen.lab.workload import AckWriter, is_writable, missing_ids
from rolegen.procedures import failback, failover
from rolegen.workspace import load_workspace

pytestmark = pytest.mark.lab


def no_confirm(_: str) -> None:
    return None


def declared(lab: Lab) -> dict[str, str]:
    return {name: spec.role for name, spec in load_workspace(lab.env_dir).specs.items()}


def never_writable(lab: Lab, env: str, seconds: float) -> int:
    """Poll every member of `env` for `seconds`; fail on the first one that takes a write. Returns polls made."""
    polls = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for ordinal, member in lab.sites[env].members.items():
            if member.running:
                polls += 1
                assert not is_writable(lab.member_dsn(env, ordinal)), f"{member.name} of {env} accepted a write"
        time.sleep(0.3)
    return polls


def test_hard_failure_failover_fence_then_failback_with_rewind(lab: Lab) -> None:
    gold = lab.sites["gold"]
    with AckWriter([lab.dsn("gold"), lab.dsn("golddr")]) as writer:
        time.sleep(1)
        failed_at = time.monotonic()
        gold.fail()  # members SIGKILLed, API server down, tunnel cut
        log: list[str] = []
        first = failover.run(pair(lab, "golddr", log), confirm=no_confirm)
        promoted_at = time.monotonic()
        assert first.promoted and not first.fenced
        assert first.fence_command and "patch configmap patroni-config --type merge" in first.fence_command
        assert any("FENCE PENDING" in line for line in log)
        assert declared(lab) == {"gold": "standby-leader", "golddr": "leader"}
        time.sleep(1)  # more writes, now on golddr

        gold.restore_api()
        again = failover.run(pair(lab, "golddr"), confirm=no_confirm)
        assert again.fenced and not again.promoted
        gold.resume_members()  # members restart with their data: crash recovery, then pg_rewind
        assert never_writable(lab, "gold", 8) > 0
        lab.wait_role("gold", "standby-leader", 90)

        result = failback.run(pair(lab, "gold"), method="rewind", confirm=no_confirm)
        assert result.method == "rewind"
        lab.wait_role("gold", "leader")
        time.sleep(0.5)
    log_ = writer.log
    # Writes acknowledged by gold in the last moment before it died may not have shipped (asynchronous
    # replication): they are the partition window. Everything else must be on gold now.
    protected = log_.acknowledged_outside(failed_at - 0.5, promoted_at)
    assert len(protected) > 100
    assert missing_ids(lab.dsn("gold"), protected) == []
    assert declared(lab) == {"gold": "leader", "golddr": "standby-leader"}


def test_old_site_restarted_without_rolegen_never_accepts_a_write(lab: Lab) -> None:
    gold = lab.sites["gold"]
    gold.fail()
    result = failover.run(pair(lab, "golddr"), confirm=no_confirm)
    assert result.promoted and not result.fenced
    # The platform brings gold back before anyone runs rolegen: its DCS config still declares leader.
    gold.restore_api()
    gold.resume_members()
    assert never_writable(lab, "gold", 10) > 0
    lab.wait_role("gold", "standby-leader", 90)  # the startup guard fenced it: it follows golddr
    logs = "".join(m.log_tail(100000) for m in gold.members.values())
    assert "FENCED: peer" in logs
    back = failback.run(pair(lab, "gold"), method="auto", confirm=no_confirm)
    assert back.method == "rewind"
    lab.wait_role("gold", "leader")

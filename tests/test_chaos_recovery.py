"""The chaos recovery policy: the runbook step an on-call person takes for each status, from `rolegen status -f
json`'s fields only."""

from __future__ import annotations

from typing import Any

import pytest

from rolegen_lab.drills.chaos.recovery import WAIT, next_command


def site(env: str, live: str | None, declared: str, **extra: Any) -> dict[str, Any]:
    return {"environment": env, "live_role": live, "declared": declared, "fence_pending": False, "diverged": None,
            **extra}


def status(healthy: bool, *sites: dict[str, Any]) -> dict[str, Any]:
    return {"healthy": healthy, "sites": list(sites)}


@pytest.mark.parametrize(("state", "expected"), [
    (status(True, site("gold", "leader", "leader"), site("golddr", "standby-leader", "standby-leader")), None),
    (status(True, site("gold", "standby-leader", "standby-leader"), site("golddr", "leader", "leader")),
     ["switchover", "--to", "gold"]),
    (status(False, site("gold", "standby-leader", "standby-leader", diverged={"reason": "x", "repair": "reseed"}),
            site("golddr", "leader", "leader")), ["failback", "--to", "gold"]),
    (status(False, site("gold", "leader", "standby-leader", fence_pending=True), site("golddr", "leader", "leader")),
     ["failover", "--to", "golddr"]),
    (status(False, site("gold", "standby-leader", "leader"), site("golddr", "leader", "standby-leader")),
     ["failover", "--to", "golddr"]),
    (status(False, site("gold", None, "standby-leader"), site("golddr", "leader", "leader")),
     ["failback", "--to", "gold"]),
    (status(False, site("gold", "leader", "leader"), site("golddr", "standby-leader", "standby-leader")),
     ["reseed", "--env", "golddr"]),
    (status(False, site("gold", "leader", "leader"), {"environment": "golddr", "declared": "standby-leader",
                                                      "error": "unreachable"}), WAIT),
    (status(False, site("gold", "standby-leader", "leader"), site("golddr", "standby-leader", "standby-leader")),
     ["failover", "--to", "gold"]),
    (status(False, site("gold", None, "leader"), site("golddr", "standby-leader", "standby-leader")), WAIT),
    (None, WAIT),
])
def test_the_runbook_step_for_each_status(state: dict[str, Any] | None, expected: list[str] | None) -> None:
    assert next_command(state, "gold") == expected

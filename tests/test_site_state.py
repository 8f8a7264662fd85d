"""A site's leader as rolegen reads it: the member holding `<scope>-leader` while its lock has not expired.
A crashed leader's Pod keeps its last `status` annotation; only renewTime + ttl says whether it still leads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rolegen.site_state import Member, SiteState, member_from_pod

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)


def site(lock: dict[str, str], role: str = "leader") -> SiteState:
    member = Member("patroni-0", role, "running", 3, 100, "primary")
    return SiteState("gold", {}, "1", {}, lock, [member], read_at=NOW.timestamp())


def renewed(seconds_ago: float, ttl: str | None = "30") -> dict[str, str]:
    lock = {"leader": "patroni-0", "renewTime": (NOW - timedelta(seconds=seconds_ago)).isoformat()}
    return lock | ({"ttl": ttl} if ttl is not None else {})


@pytest.mark.parametrize(("lock", "leads"), [
    (renewed(5), True),
    (renewed(29.9), True),
    (renewed(30), False),  # expired the moment renewTime + ttl is reached
    (renewed(15, ttl="10"), False),  # the lock's own ttl counts, not a default
    (renewed(25, ttl=None), True),  # no ttl annotation: Patroni's default, 30 s
    (renewed(35, ttl=None), False),
    ({"leader": "patroni-0"}, False),  # never renewed
    ({"leader": "patroni-0", "renewTime": "yesterday", "ttl": "30"}, False),  # unreadable: not trusted
    ({}, False),
])
def test_a_leader_leads_only_while_its_lock_is_alive(lock: dict[str, str], leads: bool) -> None:
    state = site(lock)
    assert state.lock_holder == ("patroni-0" if leads else None)
    assert state.live_role == ("leader" if leads else None)
    assert (state.leader_member is not None) is leads


def test_a_lock_holder_that_reports_replica_does_not_lead() -> None:
    state = site(renewed(1), role="replica")
    assert state.lock_holder == "patroni-0" and state.live_role is None


def test_ttl_prefers_the_lock_then_the_config_then_30() -> None:
    assert site(renewed(1, ttl="20")).ttl == 20.0
    state = SiteState("gold", {"ttl": 45}, "1", {}, {}, [])
    assert state.ttl == 45.0
    assert SiteState("gold", None, None).ttl == 30.0


def test_patroni_roles_read_in_rolegens_words() -> None:
    def pod(role: str) -> dict[str, object]:
        return {"metadata": {"name": "patroni-0", "annotations": {"status": f'{{"role": "{role}"}}'}}}

    roles = {r: member_from_pod(pod(r)).role for r in ("primary", "master", "standby_leader", "replica", "x")}
    assert roles == {"primary": "leader", "master": "leader", "standby_leader": "standby-leader",
                     "replica": "replica", "x": None}

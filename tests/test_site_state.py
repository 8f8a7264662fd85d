"""A site's leader as rolegen reads it: the member holding `<scope>-leader` while its own Pod says it leads. The
lock's renewTime was written by another machine's clock: it never decides anything here (README: decisions
survive +-60 s of clock skew); whether a lock is still renewed takes two reads on our own clock (LockWatch)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rolegen.cluster.site_state import LockWatch, Member, SiteState, member_from_pod

SKEWS = [timedelta(minutes=-10), timedelta(0), timedelta(minutes=10)]  # renewTime vs this machine's clock


def site(lock: dict[str, str], role: str = "leader", *, running: bool | None = True) -> SiteState:
    member = Member("patroni-0", role, "running", 3, 100, "primary", container_running=running)
    return SiteState("gold", {}, "1", {}, lock, [member])


def renewed(skew: timedelta, ttl: str | None = "30") -> dict[str, str]:
    lock = {"leader": "patroni-0", "renewTime": (datetime.now(UTC) + skew).isoformat()}
    return lock | ({"ttl": ttl} if ttl is not None else {})


@pytest.mark.parametrize("skew", SKEWS)
@pytest.mark.parametrize(("role", "running", "leads"), [
    ("leader", True, True),
    ("leader", None, True),  # no containerStatuses reported: its last word counts
    ("standby-leader", True, True),
    ("leader", False, False),  # crashed: its Pod keeps the last `status` annotation, the kubelet says stopped
    ("replica", True, False),  # restarted with its session lock, not leading (yet)
])
def test_the_lock_holder_leads_on_its_own_report_whatever_the_renew_time_says(
        skew: timedelta, role: str, running: bool | None, leads: bool) -> None:
    state = site(renewed(skew), role, running=running)
    assert state.lock_holder == "patroni-0"
    assert state.live_role == (role if leads else None)
    assert (state.leader_member is not None) is leads


@pytest.mark.parametrize("lock", [
    {"leader": "patroni-0"},  # never renewed: the name is what counts
    {"leader": "patroni-0", "renewTime": "yesterday", "ttl": "30"},
])
def test_a_missing_or_unreadable_renew_time_does_not_change_the_verdict(lock: dict[str, str]) -> None:
    assert site(lock).live_role == "leader"


def test_nobody_leads_without_a_lock_or_without_the_holders_pod() -> None:
    assert site({}).live_role is None
    assert site({"leader": "patroni-1"}).live_role is None  # its Pod is gone


@pytest.mark.parametrize("skew", SKEWS)
def test_a_lock_is_stale_only_after_a_ttl_of_our_clock_without_change(skew: timedelta) -> None:
    def read(version: str) -> SiteState:
        state = site(renewed(skew))
        state.leader_version = version
        return state

    watch = LockWatch()
    assert not watch.stale(read("1"), now=100.0)
    assert not watch.stale(read("1"), now=129.0)
    assert not watch.stale(read("2"), now=140.0)  # renewed: counting starts again
    assert not watch.stale(read("2"), now=169.0)
    assert watch.stale(read("2"), now=171.0)  # unchanged for more than ttl (30 s)


def test_ttl_prefers_the_lock_then_the_config_then_30() -> None:
    assert site(renewed(timedelta(0), ttl="20")).ttl == 20.0
    state = SiteState("gold", {"ttl": 45}, "1", {}, {}, [])
    assert state.ttl == 45.0
    assert SiteState("gold", None, None).ttl == 30.0


def test_patroni_roles_read_in_rolegens_words() -> None:
    def pod(role: str) -> dict[str, object]:
        return {"metadata": {"name": "patroni-0", "annotations": {"status": f'{{"role": "{role}"}}'}}}

    roles = {r: member_from_pod(pod(r)).role for r in ("primary", "master", "standby_leader", "replica", "x")}
    assert roles == {"primary": "leader", "master": "leader", "standby_leader": "standby-leader",
                     "replica": "replica", "x": None}


def test_a_members_pod_identity_is_its_uid() -> None:
    """A Pod deleted and recreated under the same name starts again at restartCount 0: its uid differs."""
    pod = {"metadata": {"name": "patroni-0", "uid": "3f1c"}, "status": {"containerStatuses": [
        {"name": "patroni", "restartCount": 0, "state": {"running": {}}}]}}
    assert (member_from_pod(pod).uid, member_from_pod(pod).restarts) == ("3f1c", 0)

"""When a site may be wiped (rolegen.procedures.wipe_rules), without a cluster: proof that the other site is a
live, healthy leader with the data the preflight saw, and a DCS config that makes the wiped site a standby."""

from __future__ import annotations

from typing import Any

import pytest

from rolegen.cluster.site_state import Member, SiteState
from rolegen.procedures.wipe_rules import leader_blockers, source_blockers, standby_config_blockers

LEADS = {"ttl": 30}
FOLLOWS = {"ttl": 30, "standby_cluster": {"host": "patroni-master-golddr", "port": 5432}}


def source(*, role: str | None = "leader", running: bool | None = True, config: dict[str, Any] | None = None,
           version: str = "1", lock: str | None = "d-0", initialize: str | None = "7") -> SiteState:
    members = [Member("d-0", role, "running", 4, 900, None, container_running=running)]
    annotations = {"initialize": initialize} if initialize else {}
    leader = {"leader": lock, "renewTime": "2000-01-01T00:00:00+00:00", "ttl": "30"} if lock else {}
    return SiteState("golddr", LEADS if config is None else config, "5", annotations, leader, members,
                     leader_version=version)


def test_a_renewed_healthy_leader_with_the_recorded_system_id_is_proof() -> None:
    # renewTime is from 2000: liveness is the observed change of the lock, never its timestamp against our clock
    assert source_blockers(source(version="1"), source(version="2"), "7") == []


@pytest.mark.parametrize(
    ("now", "why"),
    [
        (source(version="1"), "golddr's leader lock was not seen renewed while watched"),
        (source(version="2", config=FOLLOWS), "golddr's DCS config declares standby-leader, not leader"),
        (source(version="2", role="standby-leader"), "d-0 holds golddr's leader lock but reports standby-leader"),
        (source(version="2", role=None), "d-0 holds golddr's leader lock but reports nothing"),
        (source(version="2", running=False), "d-0 leads golddr but its container is stopped"),
        (source(version="2", running=None), "d-0 leads golddr but its container is not reported"),
        (source(version="2", lock=None), "nobody holds golddr's leader lock"),
        (source(version="2", lock="d-1"), "golddr's leader lock names d-1, which has no Pod"),
        (source(version="2", initialize="8"), "golddr's system id is 8, not 7 as read at preflight"),
        (source(version="2", initialize=None), "golddr's system id is missing, not 7"),
    ],
)
def test_anything_short_of_proof_blocks_the_wipe(now: SiteState, why: str) -> None:
    found = source_blockers(source(version="1"), now, "7")
    assert any(b.startswith(why) for b in found), found


def test_a_site_whose_system_id_nobody_read_is_never_proof() -> None:
    assert leader_blockers(source(), None) == ["golddr's system id was not known at preflight"]


def test_no_config_annotation_is_not_a_leader() -> None:
    state = SiteState("golddr", None, "5", {"initialize": "7"}, {}, [], leader_version="2")
    assert "golddr's DCS config declares nothing (no config annotation), not leader" in leader_blockers(state, "7")


def wiped(config: dict[str, Any] | None, version: str | None = "9") -> SiteState:
    return SiteState("gold", config, version, {}, {}, [])


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (wiped(FOLLOWS), None),
        (wiped({"ttl": 30, "standby_cluster": {"host": "patroni-master-golddr", "port": "5432"}}), None),
        (wiped(None, version=None), "gold has no DCS config object"),
        (wiped(None), "gold's DCS config object has no readable `config` annotation"),
        (wiped(LEADS), "gold's DCS config does not declare standby_cluster"),
        (wiped({"standby_cluster": {"host": "elsewhere", "port": 5432}}),
         "gold's standby_cluster points at elsewhere:5432, not its peer patroni-master-golddr:5432"),
    ],
)
def test_a_wiped_site_starts_only_as_a_standby_of_its_peer(state: SiteState, why: str | None) -> None:
    assert standby_config_blockers(state, "patroni-master-golddr", 5432) == ([why] if why else [])

"""The DR slot as `status` and `diff` show it: retained WAL and wal_status from what Patroni publishes, and a lost
slot (Patroni recreated it ahead of the standby) reported as an error naming the re-seed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import spec_data
from tests.test_status import live, live_config  # noqa: F401 - the fixture
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster.site_state import Member, SiteState
from rolegen.cluster.slot_status import slot_status
from rolegen.offline.spec import Spec

MiB = 1 << 20
runner = CliRunner()


def _spec(env: str) -> Spec:
    return Spec.from_dict(spec_data(env), f"environments/{env}.yaml")


def leader(optime: int, slot: int | None, timeline: int = 2) -> SiteState:
    lock = {"leader": "gold-0", "renewTime": datetime.now(UTC).isoformat(), "ttl": "30", "optime": str(optime)}
    if slot is not None:
        lock["slots"] = json.dumps({"golddr": slot})
    member = Member("gold-0", "leader", "running", timeline, optime, None, None, True, "x")
    return SiteState("gold", live_config("gold", "leader"), "1", {"initialize": "7712"}, lock, [member])


def standby(lsn: int, *, streaming: bool, timeline: int = 2) -> SiteState:
    lock = {"leader": "golddr-0", "renewTime": datetime.now(UTC).isoformat(), "ttl": "30"}
    member = Member("golddr-0", "standby-leader", "streaming" if streaming else "running", timeline, lsn, None, lsn,
                    True, "x")
    return SiteState("golddr", live_config("golddr", "standby-leader"), "1", {"initialize": "7712"}, lock, [member])


@pytest.mark.parametrize(("retained", "expected"), [
    (2 * MiB, "reserved"), (300 * MiB, "extended"), (1100 * MiB, "unreserved"),
])
def test_retained_wal_and_wal_status_as_postgresql_defines_them(retained: int, expected: str) -> None:
    # bundled specs: max_wal_size 256MB, wal_keep_size 256MB, bound 1GB
    found = slot_status(_spec("gold"), leader(5000 * MiB, 5000 * MiB - retained), standby(4990 * MiB, streaming=False))
    assert found is not None
    assert (found.name, found.retained, found.wal_status, found.problem) == ("golddr", retained, expected, None)
    assert found.line().startswith(f"slot golddr (for golddr): retains {retained / MiB:.1f} MiB of WAL, wal_status "
                                   f"{expected} (bound 1GB); golddr NOT streaming")


def test_a_standby_behind_a_recreated_slot_is_lost_and_the_reseed_is_named() -> None:
    # Patroni dropped the lost slot and created it again at the leader's position: the slot looks fresh.
    found = slot_status(_spec("gold"), leader(5000 * MiB, 4999 * MiB), standby(3000 * MiB, streaming=False))
    assert found is not None and found.wal_status == "lost"
    assert found.problem == ("golddr needs WAL that gold no longer holds (slot golddr lost: the standby lagged "
                             "beyond max_slot_wal_keep_size 1GB)")
    assert found.next_command == "rolegen reseed --env golddr"


@pytest.mark.parametrize("peer", [
    standby(3000 * MiB, streaming=True),  # streaming: an older snapshot of its position, not a loss
    standby(3000 * MiB, streaming=False, timeline=1),  # another timeline (being rewound): not comparable
    standby(4999 * MiB - 8 * MiB, streaming=False),  # within a segment of the slot: annotation skew
])
def test_a_standby_behind_the_slot_is_not_lost_without_evidence(peer: SiteState) -> None:
    found = slot_status(_spec("gold"), leader(5000 * MiB, 4999 * MiB), peer)
    assert found is not None and found.wal_status == "reserved"


def test_no_slot_for_a_standby_site_or_without_dr_slot() -> None:
    assert slot_status(_spec("golddr"), standby(1, streaming=True), leader(1, 1)) is None
    data = spec_data("gold")
    del data["patroni"]["dr_slot"]
    assert slot_status(Spec.from_dict(data), leader(1, 1), None) is None


def test_a_slot_not_published_yet_is_shown_as_missing_without_failing_status() -> None:
    found = slot_status(_spec("gold"), leader(5000 * MiB, None), None)
    assert found is not None and found.wal_status == "missing" and found.problem is None
    assert "not published by gold yet" in found.line()


def test_status_shows_the_slot_and_fails_naming_the_reseed_when_lost(live: dict[str, Any],  # noqa: F811
                                                                      workdir: Path) -> None:
    live.update(gold=leader(5000 * MiB, 4990 * MiB), golddr=standby(4995 * MiB, streaming=True))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert ("  slot golddr (for golddr): retains 10.0 MiB of WAL, wal_status reserved (bound 1GB); golddr streaming"
            in result.stdout)
    live.update(golddr=standby(3000 * MiB, streaming=False))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "SLOT LOST: golddr needs WAL that gold no longer holds" in result.stdout
    assert "    re-seed: rolegen reseed --env golddr" in result.stdout
    # One problem a line (the lag beyond the switchover's bound is one too).
    assert "NOT HEALTHY: golddr not streaming from its peer (standby leader running)\n" in result.stdout
    assert "NOT HEALTHY: golddr lost its slot on gold\n" in result.stdout
    data = json.loads(runner.invoke(app, ["status", "-f", "json"]).stdout)
    slot = data["sites"][0]["slot"]
    assert (slot["wal_status"], slot["next"], slot["retained_bytes"]) == ("lost", "rolegen reseed --env golddr",
                                                                          10 * MiB)

"""The lab's heal of the operator's faults (rolegen_lab.operator_faults): maintenance mode ends even when the
site's members were held down and heal_all has only just started them (chaos seed 903 found it)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from rolegen.errors import RolegenError, WaitTimedOut
from rolegen_lab.operator_faults import OperatorFaults


class Lab(OperatorFaults):
    def __init__(self, answers_after: int) -> None:
        self.sites = {}
        self.maintained = {"golddr"}
        self.asked = 0
        self.answers_after = answers_after

    def site(self, name: str) -> Any:
        return SimpleNamespace(lost=False)

    def _chosen(self, name: str | None) -> list[Any]:
        return []

    def edit_config(self, site: str, patch: dict[str, Any]) -> str:
        self.asked += 1
        if self.asked <= self.answers_after:
            raise RolegenError(f"{site}: no Patroni took PATCH /config (none running)")
        return site


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr("rolegen.cluster.wait.time.monotonic", lambda: now[0])
    monkeypatch.setattr("rolegen.cluster.wait.time.sleep", lambda s: now.__setitem__(0, now[0] + s))


def test_maintenance_ends_once_a_just_started_member_answers() -> None:
    lab = Lab(answers_after=3)
    lab.heal_operator()
    assert lab.asked == 4 and lab.maintained == set()


def test_a_site_whose_patroni_never_answers_is_named_after_the_bound() -> None:
    lab = Lab(answers_after=10**6)
    with pytest.raises(WaitTimedOut, match="a Patroni of golddr to end maintenance mode"):
        lab.heal_operator()
    assert lab.maintained == {"golddr"}


class Api:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str, dict[str, Any] | None]] = []

    def delete(self, kind: str, name: str, options: dict[str, Any] | None = None) -> None:
        self.deleted.append((kind, name, options))


def test_a_pod_is_force_deleted_unless_asked_to_delete_it_as_kubectl_does() -> None:
    """Force (grace 0): the processes die at once, Patroni's lock stays until it expires. Graceful (the
    failover's hint): SIGTERM, Patroni releases the lock it holds as it stops."""
    api = Api()
    members = {0: SimpleNamespace(name="patroni-0"), 1: SimpleNamespace(name="patroni-1")}
    gold = SimpleNamespace(api=api, members=members, last_leader=0,
                           resolve=lambda member: [o for o, m in members.items() if member in (m.name, str(o))])
    lab = Lab(answers_after=0)
    lab.site = lambda name: gold  # type: ignore[method-assign]
    assert lab.delete_pod("gold", "leader") == ["patroni-0"]
    assert lab.delete_pod("gold", "patroni-1", force=False) == ["patroni-1"]
    assert api.deleted == [("pods", "patroni-0", {"gracePeriodSeconds": 0}), ("pods", "patroni-1", None)]

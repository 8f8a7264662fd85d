"""The lab's fault verbs (rolegen_lab.control.fault_verbs) as a user reads them: the line saying what changed,
"Not changed" when nothing did, and a usage error for a target that names no member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rolegen.errors import UsageError
from rolegen_lab.control import fault_verbs


class Daemon:
    """The lab daemon's control socket: records each request, answers from `answers`."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def request(self, op: str, **args: Any) -> Any:
        self.requests.append((op, args))
        return self.answers.get(op)


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Daemon:
    found = Daemon(kill=["patroni-0", "patroni-1"], heal=[], api_heal=["gold"], delete_pod=["patroni-1"])
    monkeypatch.setattr(fault_verbs, "connect", lambda root: found)
    return found


def test_targets_are_a_site_or_one_of_its_members() -> None:
    assert fault_verbs.parse_target("gold") == ("gold", None)
    assert fault_verbs.parse_target("gold/leader") == ("gold", "leader")
    for bad in ("", "gold/", "/patroni-0", "gold/a/b"):
        with pytest.raises(UsageError, match="bad target") as caught:
            fault_verbs.parse_target(bad)
        assert caught.value.hint and "gold/patroni-0" in caught.value.hint


def test_each_fault_says_what_changed(daemon: Daemon) -> None:
    root = Path("/nowhere")
    assert fault_verbs.fault(root, "kill", "gold").text == \
        "gold: patroni-0, patroni-1 killed (the lab restarts them at once)"
    assert fault_verbs.fault(root, "kill", "gold", restart=False).text.endswith(
        "(kept down until: rolegen lab start gold)")
    assert daemon.requests[-1] == ("kill", {"site": "gold", "member": None, "restart": False})
    assert fault_verbs.fault(root, "api_cut", "golddr").text == (
        "golddr: the operator's connections to its API are now refused (a VPN or API load balancer down); the site "
        "itself sees nothing")
    assert fault_verbs.fault(root, "api_heal").text == "the operator reaches the API of gold again"
    assert fault_verbs.fault(root, "delete_pod", "gold/patroni-1").text.startswith(
        "gold: Pod patroni-1 force-deleted")


def test_a_fault_that_changes_nothing_says_so(daemon: Daemon) -> None:
    assert fault_verbs.fault(Path("/nowhere"), "heal").text == "Not changed: no tunnel was cut"
    daemon.answers["kill"] = []
    assert fault_verbs.fault(Path("/nowhere"), "kill", "gold").text == "Not changed: no member of gold to kill"


def test_a_pod_deletion_needs_a_member_and_an_unknown_fault_is_refused(daemon: Daemon) -> None:
    with pytest.raises(UsageError, match="delete-pod needs SITE/MEMBER"):
        fault_verbs.fault(Path("/nowhere"), "delete_pod", "gold")
    with pytest.raises(UsageError, match="unknown lab fault 'melt'"):
        fault_verbs.fault(Path("/nowhere"), "melt", "gold")
    assert [op for op, _ in daemon.requests] == []  # nothing was sent

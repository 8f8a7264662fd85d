"""The lab's control channel (one JSON line per request over a unix socket) and the fault verbs of the CLI,
against a stand-in lab: no Patroni needed to check what users type and read."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.errors import RolegenError
from rolegen.lab.control import (
    SOCKET_FILE,
    ControlClient,
    ControlServer,
    LocalControl,
    decode,
    dispatch,
    encode,
    request_message,
)

runner = CliRunner()


class StandInLab:
    """Records the operations it receives; refuses unknown sites the way the lab does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def info(self) -> dict[str, Any]:
        return {"sites": {"gold": {}, "golddr": {}}}

    def _site(self, site: str) -> None:
        if site not in ("gold", "golddr"):
            raise RolegenError(f"the lab has no site {site!r}", hint="sites: gold, golddr")

    def kill(self, site: str, member: str | None, restart: bool) -> list[str]:
        self._site(site)
        self.calls.append(("kill", {"site": site, "member": member, "restart": restart}))
        return [member or "patroni-0"]

    def cut(self, site: str | None) -> list[str]:
        self.calls.append(("cut", {"site": site}))
        return [site] if site else ["gold", "golddr"]


@pytest.fixture
def served() -> Iterator[tuple[Path, StandInLab]]:
    """A lab root with a live daemon pid and a control socket served by a stand-in lab."""
    root = Path(tempfile.mkdtemp(prefix="rg-ctl-"))  # short: unix socket paths are limited to ~100 bytes
    (root / "daemon.pid").write_text(f"{os.getpid()}\n")
    lab = StandInLab()
    server = ControlServer(root / SOCKET_FILE, lab)
    try:
        yield root, lab
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)


def test_messages_are_one_sorted_json_line() -> None:
    line = encode(request_message("kill", site="gold"))
    assert line == b'{"args":{"member":null,"restart":true,"site":"gold"},"op":"kill"}\n'
    assert decode(line) == {"args": {"member": None, "restart": True, "site": "gold"}, "op": "kill"}
    with pytest.raises(RolegenError, match="malformed"):
        decode(b"[1, 2]\n")


@pytest.mark.parametrize(
    ("op", "args", "message"),
    [
        ("explode", {}, "unknown lab operation 'explode'"),
        ("kill", {}, "missing argument(s) site"),
        ("cut", {"site": "gold", "force": True}, "unknown argument(s) force"),
    ],
)
def test_bad_requests_are_refused_before_reaching_the_lab(op: str, args: dict[str, Any], message: str) -> None:
    lab = StandInLab()
    response = dispatch(lab, {"op": op, "args": args})
    assert response["ok"] is False and message in response["error"]
    assert lab.calls == []


def test_lab_errors_travel_back_with_their_hint() -> None:
    with pytest.raises(RolegenError) as err:
        LocalControl(StandInLab()).request("kill", site="silver")
    assert err.value.message == "the lab has no site 'silver'" and err.value.hint == "sites: gold, golddr"


def test_the_socket_carries_requests_and_is_private(served: tuple[Path, StandInLab]) -> None:
    root, lab = served
    assert (root / SOCKET_FILE).stat().st_mode & 0o777 == 0o600
    client = ControlClient(root / SOCKET_FILE)
    assert client.request("kill", site="gold", member="patroni-1", restart=False) == ["patroni-1"]
    assert lab.calls == [("kill", {"site": "gold", "member": "patroni-1", "restart": False})]


def test_no_daemon_means_one_error_with_the_command_to_run(tmp_path: Path) -> None:
    with pytest.raises(RolegenError) as err:
        ControlClient(tmp_path / SOCKET_FILE).request("info")
    assert err.value.hint == "is the lab up? rolegen lab up"
    for args in (["lab", "kill", "gold"], ["lab", "cut"], ["lab", "drill", "switchover"]):
        result = runner.invoke(app, [*args, "--root", str(tmp_path)])
        assert result.exit_code == 1, args
        assert "error: no lab is running" in result.stderr and "hint: start it with: rolegen lab up" in result.stderr


def test_kill_says_whether_the_lab_restarts_the_member(served: tuple[Path, StandInLab]) -> None:
    root, lab = served
    result = runner.invoke(app, ["lab", "kill", "gold/patroni-0", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "gold: patroni-0 killed (the lab restarts them at once)\n"
    result = runner.invoke(app, ["lab", "kill", "gold/patroni-0", "--no-restart", "--root", str(root)])
    assert result.stdout == "gold: patroni-0 killed (kept down until: rolegen lab start gold/patroni-0)\n"
    assert [c[1]["restart"] for c in lab.calls] == [True, False]


def test_cut_names_the_tunnels_and_that_local_writes_continue(served: tuple[Path, StandInLab]) -> None:
    root, _ = served
    result = runner.invoke(app, ["lab", "cut", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("tunnel towards gold, golddr cut") and "local writes continue" in result.stdout


def test_bad_target_and_unknown_scenario_are_usage_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["lab", "pause", "gold/", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "bad target 'gold/'" in result.stderr
    result = runner.invoke(app, ["lab", "drill", "meteor-strike", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "unknown drill scenario 'meteor-strike'" in result.stderr


def test_lab_help_lists_the_fault_verbs_and_drill() -> None:
    result = runner.invoke(app, ["lab", "--help"])
    for verb in ("kill", "start", "pause", "resume", "cut", "heal", "lose", "restore", "drill"):
        assert verb in result.stdout

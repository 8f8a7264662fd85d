"""The lab's control channel: `rolegen lab kill|cut|...` and drills reach the daemon behind `rolegen lab up`
through a unix socket in the lab root (mode 0600), one JSON object per line each way:

    request:  {"args": {"member": null, "restart": true, "site": "gold"}, "op": "kill"}
    response: {"ok": true, "result": ["patroni-0", "patroni-1"]}
              {"error": "the lab has no site 'x'", "hint": "sites: gold, golddr", "ok": false}

`dispatch` is the one place that maps a request onto the lab's methods; `LocalControl` calls it in-process
(tests, benchmarks), `ControlClient` sends it over the socket, so a drill runs the same code either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any, Protocol

from rolegen.errors import RolegenError

SOCKET_FILE = "control.sock"
PID_FILE = "daemon.pid"  # the daemon's pid, in the lab root beside the socket
MAX_LINE = 64 * 1024
# op -> (required args, optional args with defaults)
OPS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "info": ((), {}),
    "faults": ((), {}),
    "heal_all": ((), {}),
    "kill": (("site",), {"member": None, "restart": True}),
    "start": (("site",), {"member": None}),
    "pause": (("site",), {"member": None}),
    "resume": (("site",), {"member": None}),
    "restart_postgres": (("site",), {"member": "leader"}),
    "cut": ((), {"site": None, "direction": "both"}),
    "heal": ((), {"site": None}),
    "lose": (("site",), {"dark": False}),
    "restore": (("site",), {"api_only": False, "tunnel_after": 0}),
    "api_cut": (("site",), {}),
    "api_slow": (("site",), {}),
    "api_flaky": (("site",), {"rate": 0.5}),
    "api_heal": ((), {"site": None}),
    "wan": ((), {"latency_ms": 0, "jitter_ms": 0, "rate_mbit": 0, "reset_every_s": 0, "site": None}),
    "delete_pod": (("site", "member"), {"force": True}),
    "maintenance": (("site",), {"on": True}),
    "edit_config": (("site", "patch"), {}),
    "witness_cut": (("site",), {"direction": "both"}),
    "witness_heal": ((), {"site": None}),
    "witness_lose": ((), {}),
    "witness_restore": ((), {}),
    "kill_guard": (("site",), {"member": "leader"}),
    "skew": (("site", "seconds"), {}),
    "await_synchronous": ((), {"timeout": 30}),
}


class Controlled(Protocol):
    """What the channel drives: the lab (rolegen_lab.lab.Lab and its LabFaults methods)."""

    def info(self) -> dict[str, Any]: ...


class Control(Protocol):
    def request(self, op: str, **args: Any) -> Any: ...


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, sort_keys=True, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise RolegenError(f"control message longer than {MAX_LINE} bytes")
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise RolegenError(f"malformed control message: {exc}") from None
    if not isinstance(message, dict):
        raise RolegenError("malformed control message: not a JSON object")
    return message


def request_message(op: str, **args: Any) -> dict[str, Any]:
    """A validated request: known op, required args present, no unknown args, defaults filled in."""
    if op not in OPS:
        raise RolegenError(f"unknown lab operation {op!r}", hint=f"known: {', '.join(sorted(OPS))}")
    required, optional = OPS[op]
    unknown = sorted(set(args) - set(required) - set(optional))
    missing = [a for a in required if args.get(a) is None]
    if unknown or missing:
        raise RolegenError(f"lab operation {op}: " + "; ".join(
            [f"unknown argument(s) {', '.join(unknown)}"] * bool(unknown)
            + [f"missing argument(s) {', '.join(missing)}"] * bool(missing)))
    return {"op": op, "args": {**optional, **args}}


def dispatch(lab: Controlled, message: dict[str, Any]) -> dict[str, Any]:
    """Run one request against the lab; every failure becomes an error response, never an exception."""
    try:
        request = request_message(str(message.get("op")), **dict(message.get("args") or {}))
        result = getattr(lab, request["op"])(**request["args"])
    except RolegenError as exc:
        return {"ok": False, "error": exc.message, "hint": exc.hint}
    except (OSError, TimeoutError, ValueError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "hint": None}
    return {"ok": True, "result": result}


def unwrap(response: dict[str, Any]) -> Any:
    if response.get("ok"):
        return response.get("result")
    raise RolegenError(str(response.get("error", "the lab refused")), hint=response.get("hint"))


class LocalControl:
    """The channel without the socket: same validation and results, for a Lab in this process."""

    def __init__(self, lab: Controlled) -> None:
        self.lab = lab

    def request(self, op: str, **args: Any) -> Any:
        return unwrap(dispatch(self.lab, json.loads(encode(request_message(op, **args)))))


class ControlClient:
    def __init__(self, path: Path, timeout: float = 60) -> None:
        self.path, self.timeout = path, timeout

    def request(self, op: str, **args: Any) -> Any:
        message = encode(request_message(op, **args))
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.path))
                sock.sendall(message)
                with sock.makefile("rb") as reader:
                    line = reader.readline(MAX_LINE + 1)
        except OSError as exc:
            raise RolegenError(f"cannot reach the lab daemon at {self.path}: {exc.strerror or exc}",
                               hint="is the lab up? rolegen lab up") from None
        if not line:
            raise RolegenError("the lab daemon closed the control connection without answering")
        return unwrap(decode(line))


def daemon_pid(root: Path) -> int | None:
    """The pid of the lab daemon serving `root`, if it is alive."""
    try:
        pid = int((root / PID_FILE).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def connect(root: Path) -> ControlClient:
    """The running lab's control channel; a clear error when no lab runs."""
    if daemon_pid(root) is None or not (root / SOCKET_FILE).exists():
        raise RolegenError(f"no lab is running in {root}", hint="start it with: rolegen lab up")
    return ControlClient(root / SOCKET_FILE)


class _Handler(socketserver.StreamRequestHandler):
    server: ControlServer

    def handle(self) -> None:
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return
        try:
            message = decode(line)
        except RolegenError as exc:
            self.wfile.write(encode({"ok": False, "error": exc.message, "hint": exc.hint}))
            return
        with self.server.lock:  # one operation at a time: faults are not designed to interleave
            response = dispatch(self.server.lab, message)
        self.wfile.write(encode(response))


class ControlServer(socketserver.ThreadingUnixStreamServer):
    """Serves the lab on `path` in a background thread until close()."""

    daemon_threads = True

    def __init__(self, path: Path, lab: Controlled) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        super().__init__(str(path), _Handler)
        path.chmod(0o600)
        self.path, self.lab, self.lock = path, lab, threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="lab-control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

"""TCP ports for the lab's listeners, reserved machine-wide.

A lab's members, proxies and control planes listen on ports chosen once, when the lab is built, and bound again
at every restart. A port picked from the ephemeral range is free while its process is down, and any outgoing
connection, or another lab on this machine (the test suite runs two at once), may be given it meanwhile: then
a member restarts without its REST API, or another lab's Patroni answers on its port. So the ports come from
below the ephemeral range (never handed to outgoing connections), each held by a lock file for the life of the
process that chose it."""

from __future__ import annotations

import fcntl
import os
import random
import socket
from pathlib import Path

from rolegen.errors import RolegenError

LOCKS = Path(os.environ.get("ROLEGEN_LAB_PORTS", "/var/tmp/rolegen-lab-ports"))
LOWEST = 10000
_held: dict[int, int] = {}  # port -> the fd holding its lock, released when this process exits


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listeners bind: TIME_WAIT is no owner
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def reserve(hosts: tuple[str, ...] = ("127.0.0.1",)) -> int:
    """A port no other lab or process of this machine holds, bindable on every one of `hosts`."""
    LOCKS.mkdir(parents=True, exist_ok=True)
    top = max(_ephemeral_low(), LOWEST + 1000)
    for port in random.sample(range(LOWEST, top), min(3000, top - LOWEST)):
        if port in _held:
            continue
        fd = os.open(LOCKS / str(port), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if all(_bindable(host, port) for host in hosts):
            _held[port] = fd
            return port
        os.close(fd)  # closing releases the lock
    raise RolegenError(f"no TCP port between {LOWEST} and {top} is free for the lab",
                       hint=f"too many labs on this machine? rolegen lab down; locks: {LOCKS}")

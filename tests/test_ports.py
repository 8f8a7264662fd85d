"""The lab's listening ports: below the ephemeral range, and never one another lab of this machine holds."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from rolegen_lab.network import ports


@pytest.fixture
def locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ports, "LOCKS", tmp_path)
    monkeypatch.setattr(ports, "_held", {})
    return tmp_path


def test_ports_come_from_below_the_ephemeral_range_and_differ(locks: Path) -> None:
    got = [ports.reserve() for _ in range(20)]
    assert len(set(got)) == 20
    assert all(ports.LOWEST <= p < ports._ephemeral_low() for p in got)  # never given to outgoing connections


def test_a_port_another_lab_holds_is_skipped(locks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    free = [p for p in range(ports.LOWEST, ports.LOWEST + 200) if ports._bindable("127.0.0.1", p)][:2]
    other = os.open(locks / str(free[0]), os.O_CREAT | os.O_RDWR)  # another process's lock (another fd)
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        monkeypatch.setattr(ports.random, "sample", lambda population, k: list(free))
        assert ports.reserve() == free[1]
    finally:
        os.close(other)


def test_a_port_something_listens_on_is_skipped(locks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        free = next(p for p in range(ports.LOWEST, ports.LOWEST + 200) if ports._bindable("127.0.0.1", p))
        monkeypatch.setattr(ports.random, "sample", lambda population, k: [busy, free])
        assert ports.reserve() == free

"""The drills' independent writer: it must survive every way a member goes away, or the drill counts nothing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from rolegen_lab.drills import workload


class _ShuttingDown:
    """A connection accepted by a postmaster that terminates it before the first query (a demotion)."""

    closed = False

    def execute(self, *_: Any) -> Any:
        raise psycopg.errors.AdminShutdown("terminating connection due to administrator command")

    def close(self) -> None:
        self.closed = True


class _Primary:
    def execute(self, *_: Any) -> Any:
        return self

    def fetchone(self) -> tuple[bool]:
        return (False,)

    def close(self) -> None:
        pass


def test_a_node_shutting_down_between_connect_and_query_is_skipped_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    dying, primary = _ShuttingDown(), _Primary()
    nodes = {"dsn-a": dying, "dsn-b": primary}
    monkeypatch.setattr(workload.psycopg, "connect", lambda dsn, **_: nodes[dsn])
    assert workload._connect_writable_indexed(["dsn-a", "dsn-b"]) == (1, primary)
    assert dying.closed

"""Measured safety: a writer that records an id only after the server acknowledged its commit, a checker
that every recorded id exists on a node, and a wait for a writable leader gated on the database itself
(Patroni's REST answers a moment before pg_is_in_recovery() turns false)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

TABLE = "rolegen_lab_writes"


@dataclass
class WriteLog:
    acknowledged: list[int] = field(default_factory=list)
    acknowledged_at: list[float] = field(default_factory=list)  # time.monotonic() of each acknowledgement
    acknowledged_by: list[int] = field(default_factory=list)  # index of the DSN whose server acknowledged it
    unknown: list[int] = field(default_factory=list)  # in flight when the connection broke: may or may not exist
    failures: int = 0

    def acknowledged_outside(self, start: float, end: float) -> list[int]:
        """Ids acknowledged before `start` or after `end` (monotonic times): the ones no failure may lose."""
        return [i for i, at in zip(self.acknowledged, self.acknowledged_at, strict=True) if not start <= at <= end]
    # Longest stretch with no acknowledged write while the writer ran (seconds).
    longest_gap: float = 0.0


class AckWriter:
    """Inserts increasing ids, one transaction each, into whichever DSN accepts writes."""

    def __init__(self, dsns: Sequence[str], interval: float = 0.005) -> None:
        self._dsns = list(dsns)
        self._interval = interval
        self.log = WriteLog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ack-writer", daemon=True)

    def __enter__(self) -> AckWriter:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        ensure_table(self._dsns)
        self._thread.start()

    def stop(self) -> WriteLog:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.log

    def _run(self) -> None:
        next_id = int(time.time() * 1000) * 1000  # unique across runs sharing a table
        last_ack = time.monotonic()
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        source = -1
        while not self._stop.is_set():
            if conn is None:
                source, conn = _connect_writable_indexed(self._dsns)
                if conn is None:
                    time.sleep(0.05)
                    continue
            next_id += 1
            try:
                conn.execute(f"INSERT INTO {TABLE} (id) VALUES (%s)", (next_id,))
            except psycopg.Error:
                self.log.unknown.append(next_id)
                self.log.failures += 1
                conn.close()
                conn = None
                continue
            now = time.monotonic()
            self.log.longest_gap = max(self.log.longest_gap, now - last_ack)
            last_ack = now
            self.log.acknowledged.append(next_id)
            self.log.acknowledged_at.append(now)
            self.log.acknowledged_by.append(source)
            time.sleep(self._interval)
        if conn is not None:
            conn.close()


def _connect_writable(dsns: Sequence[str]) -> psycopg.Connection[tuple[object, ...]] | None:
    return _connect_writable_indexed(dsns)[1]


def _connect_writable_indexed(dsns: Sequence[str]) -> tuple[int, psycopg.Connection[tuple[object, ...]] | None]:
    """(index of the DSN, connection) of the first node that is out of recovery; (-1, None) if none is."""
    for index, dsn in enumerate(dsns):
        try:
            conn = psycopg.connect(dsn, autocommit=True, connect_timeout=2)
        except psycopg.Error:
            continue
        try:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        except psycopg.Error:  # shutting down between connect and query (a demotion, a deleted Pod)
            conn.close()
            continue
        if row is not None and row[0] is False:
            return index, conn
        conn.close()
    return -1, None


def ensure_table(dsns: Sequence[str], timeout: float = 30) -> None:
    conn = wait_writable(dsns, timeout)
    with conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint PRIMARY KEY)")


def wait_writable(dsns: Sequence[str], timeout: float = 60) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to a node that is out of recovery and accepts a write."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = _connect_writable(dsns)
        if conn is not None:
            return conn
        time.sleep(0.1)
    raise TimeoutError(f"no writable node among {len(dsns)} DSN(s) within {timeout:.0f}s")


def missing_ids(dsn: str, acknowledged: Sequence[int]) -> list[int]:
    """Acknowledged ids that the node at `dsn` does not have: each one is a lost write."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        present = {row[0] for row in conn.execute(f"SELECT id FROM {TABLE}")}
    return sorted(set(acknowledged) - present)


def is_writable(dsn: str) -> bool:
    """True only if the node takes a write now (used to prove a fenced site never accepts one)."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE}_probe (at timestamptz)")
            conn.execute(f"INSERT INTO {TABLE}_probe VALUES (now())")
            return True
    except psycopg.Error:
        return False

"""This member's storage figures, published on its own Pod as the annotation `rolegen.io/storage` (JSON), for
`rolegen failback`'s prediction of what a rewind and a re-seed would move (`--dry-run`, `--method auto`): what
nothing in Patroni's own objects says.

- `wal_bytes`: the size of pg_wal (pg_ls_waldir): pg_rewind copies all of the source's.
- `data_bytes`: every database's size: what a re-seed (pg_basebackup) copies.
- `redo_lsn`, `lsn`: the last checkpoint's redo position and this member's position.
- `fpi_since_redo`, `fpi_counted_from`: the full-page images written (pg_stat_wal) between the first reading
  that saw this checkpoint and this one. Each block first changed after a checkpoint writes one image, so on a
  site that fails they count the blocks a rewind must copy back from the other site.
- `fpi_per_mib`: images per MiB of WAL in the first EARLY_WAL of WAL counted after the latest checkpoint that
  saw that much (null until one did), the rate for the WAL outside a short counted window: right after a
  checkpoint nearly every change is a block's first, so a cycle's early rate is its highest.
- `block_size`.

The startup guard forks the publisher before it execs Patroni, so it lives and dies with the container; it reads
every ROLEGEN_FIGURES_EVERY seconds (0: never) and patches the Pod only when a figure changed. Any error (PostgreSQL
not up, the API not answering) skips that round: a figure is only ever missing or old, never made up; `lsn` says
how old. Needs python3, PyYAML and psql (files/member_sql.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

ANNOTATION = "rolegen.io/storage"
EARLY_WAL = 4 << 20  # bytes of WAL counted after a checkpoint that give its early rate of images
QUERY = (
    "SELECT pg_is_in_recovery(), (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()), "
    "(SELECT sum(pg_database_size(oid)) FROM pg_database), (pg_control_checkpoint()).redo_lsn, "
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, "
    "(SELECT wal_fpi FROM pg_stat_wal), current_setting('block_size')"
)


def parse(row: str) -> dict[str, Any]:
    """psql's unaligned row of QUERY (`|`-separated) as figures; ValueError when it is not one."""
    fields = row.strip().split("|")
    if len(fields) != 7 or fields[0] not in ("t", "f"):
        raise ValueError(f"unexpected row: {row!r}")
    recovery, wal, data, redo, lsn, fpi, block = fields
    return {"in_recovery": recovery == "t", "wal_bytes": int(wal), "data_bytes": int(data), "redo_lsn": redo,
            "lsn": lsn, "fpi": int(fpi), "block_size": int(block)}


def lsn_bytes(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


class Publisher:
    """One read per round. The images are counted from the first read that saw the current redo: a checkpoint
    that began between two reads leaves its first images uncounted (`fpi_counted_from` says from where)."""

    def __init__(self, query: Callable[[str], str], patch: Callable[[dict[str, Any]], None],
                 log: Callable[[str], None]) -> None:
        self.query, self.patch, self.log = query, patch, log
        self.redo: str | None = None
        self.counted_from: tuple[str, int] = ("0/0", 0)  # (lsn, cumulative images) of that first read
        self.per_mib: float | None = None
        self.early_pending = False  # this cycle's early rate is still to be taken
        self.published: dict[str, Any] | None = None
        self.failing: str | None = None

    def round(self) -> None:
        try:
            raw = parse(self.query(QUERY))
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self._failed(f"read: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}")
            return
        lsn, fpi = raw["lsn"], raw["fpi"]
        if fpi < self.counted_from[1]:  # statistics reset (a crash): count again from here
            self.redo = None
        if raw["redo_lsn"] != self.redo:
            self.redo, self.counted_from, self.early_pending = raw["redo_lsn"], (lsn, fpi), True
        window = lsn_bytes(lsn) - lsn_bytes(self.counted_from[0])
        if self.early_pending and window >= EARLY_WAL:
            self.per_mib = round((fpi - self.counted_from[1]) * 2**20 / window, 3)
            self.early_pending = False
        figures = {k: v for k, v in raw.items() if k != "fpi"}
        figures.update(fpi_since_redo=fpi - self.counted_from[1], fpi_counted_from=self.counted_from[0],
                       fpi_per_mib=self.per_mib)
        if figures == self.published:
            return
        try:
            self.patch({"metadata": {"annotations": {ANNOTATION: json.dumps(figures, sort_keys=True)}}})
        except Exception as exc:  # the API may be away for a while: the next round tries again
            self._failed(f"patch: {exc}")
            return
        self.published, self.failing = figures, None

    def _failed(self, why: str) -> None:
        kind = why.split(":", 1)[0]
        if self.failing != kind:  # one line per kind of failure, not one per round
            self.log(f"member-figures: skipped ({why})")
        self.failing = kind


def _die_with_parent() -> None:
    """The container's first process is our parent (the guard, then Patroni after its exec): when it ends, so do
    we (PR_SET_PDEATHSIG), as every process of a container does."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(patroni_yml: str, request: Callable[[str, str, Any], Any]) -> int | None:
    """Fork the publisher (the child never returns); its pid, or None when ROLEGEN_FIGURES_EVERY is 0 or unset."""
    try:
        every = float(os.environ.get("ROLEGEN_FIGURES_EVERY") or 0)
    except ValueError:
        every = 0
    pod = os.environ.get("PATRONI_NAME")
    if every <= 0 or not pod:
        return None
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        _die_with_parent()
        if os.getppid() != parent:  # the parent ended before the death signal was asked for
            return None
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import yaml  # a Patroni image has PyYAML (Patroni needs it)
        from member_sql import psql_runner

        with open(patroni_yml) as handle:
            namespace = (yaml.safe_load(handle).get("kubernetes") or {}).get("namespace") or "default"
        run = psql_runner(patroni_yml, dict(os.environ))
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}"
        publisher = Publisher(run, lambda body: request("PATCH", path, body),
                              lambda line: print(line, file=sys.stderr, flush=True))
        while True:
            time.sleep(every)
            publisher.round()
    except BaseException as exc:  # the publisher never takes the member down: it ends, Patroni runs on
        print(f"member-figures: stopped ({exc!r})", file=sys.stderr, flush=True)
    finally:
        os._exit(0)

"""A member's storage figures, as it publishes them on its own Pod (the chart's files/member_figures.py, started by
the startup guard): the sizes of its pg_wal and databases, its last checkpoint and the blocks changed since. Nothing
in Patroni's objects says these; rolegen failback predicts from them what a rewind and a re-seed would move."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rolegen.prometheus import Family

if TYPE_CHECKING:
    from rolegen.cluster.site_state import SiteState

ANNOTATION = "rolegen.io/storage"
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


def lsn_int(text: Any) -> int | None:
    """PostgreSQL's `X/Y` LSN text as a number (None when it is not one)."""
    found = _LSN.match(text) if isinstance(text, str) else None
    return (int(found.group(1), 16) << 32) + int(found.group(2), 16) if found else None


@dataclass(frozen=True)
class Storage:
    """One reading of a member: `lsn` is where it was when read (its age, measured in WAL)."""

    in_recovery: bool
    wal_bytes: int
    data_bytes: int
    redo_lsn: int
    lsn: int
    fpi_since_redo: int  # full-page images (blocks first changed since the checkpoint) from fpi_counted_from to lsn
    block_size: int
    fpi_counted_from: int  # the first reading at this redo: images before it (after redo_lsn) were not counted
    fpi_per_mib: float | None = None  # images per MiB of WAL early in the latest checkpoint cycle that had one

    @classmethod
    def from_annotations(cls, annotations: dict[str, Any]) -> Storage | None:
        """The figures of a Pod's annotations; None when absent or not as the publisher writes them (a figure
        that cannot be read is missing, never guessed)."""
        try:
            data = json.loads(annotations.get(ANNOTATION) or "null")
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        ints = [data.get(k) for k in ("wal_bytes", "data_bytes", "fpi_since_redo", "block_size")]
        redo, lsn, counted = (lsn_int(data.get(k)) for k in ("redo_lsn", "lsn", "fpi_counted_from"))
        rate = data.get("fpi_per_mib")
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in ints):
            return None
        if redo is None or lsn is None or counted is None:
            return None
        if rate is not None and (not isinstance(rate, int | float) or isinstance(rate, bool) or rate < 0):
            return None
        wal, size, fpi, block = (int(v) for v in ints)  # type: ignore[arg-type]
        if block <= 0:
            return None
        return cls(bool(data.get("in_recovery")), wal, size, redo, lsn, fpi, block, counted,
                   None if rate is None else float(rate))

    def as_dict(self) -> dict[str, Any]:
        """What `rolegen status -f json` shows of a member's figures (`lsn`: where it was when read)."""
        return {"wal_bytes": self.wal_bytes, "data_bytes": self.data_bytes, "lsn": self.lsn,
                "in_recovery": self.in_recovery}


def size_text(count: int) -> str:
    """A size as people read it: MiB below a GiB, then GiB, then TiB (one decimal)."""
    for unit, shift in (("TiB", 40), ("GiB", 30)):
        if count >= 1 << shift:
            return f"{count / (1 << shift):.1f} {unit}"
    return f"{count / (1 << 20):.1f} MiB"


def storage_families(states: Iterable[SiteState]) -> list[Family]:
    """Each member's pg_wal and databases as it last published them (a member that publishes none is absent)."""
    wal = Family("rolegen_member_wal_bytes", "Size of the member's pg_wal at its last published reading.")
    data = Family("rolegen_member_database_bytes", "Size of the member's databases (their sum) at its last "
                  "published reading.")
    for state in states:
        for member in state.members:
            if member.storage is not None:
                wal.add(member.storage.wal_bytes, site=state.environment, member=member.name)
                data.add(member.storage.data_bytes, site=state.environment, member=member.name)
    return [wal, data]

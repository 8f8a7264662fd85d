"""What a failback's repair would move over the link, predicted before it starts from the members' own figures
(cluster.storage: each member publishes them on its Pod), pure.

- A re-seed (pg_basebackup) copies the leading member's databases: `data_bytes`.
- A rewind (pg_rewind) copies the source's whole pg_wal (`wal_bytes`), plus every block the returning site
  changed since its last checkpoint before the divergence, which pg_rewind reads from that site's WAL. Each block
  first changed after a checkpoint writes one full-page image, so the returning member's `fpi_since_redo` counts
  them; the WAL outside the window it counted (before its first reading at that checkpoint, and after its last
  reading up to its final position in Patroni's objects) adds images at its measured rate: the window's own when
  it is long, else the rate the member measured early in its latest checkpoint cycle (right after a checkpoint
  nearly every change is a block's first). Then the returning site
  streams again the WAL from the start of the divergence's segment (a standby starts streaming at a segment
  boundary, once per timeline), although pg_rewind copied it: measured on the lab, that is what moves besides.
  The non-relation files (pg_xact, the configuration, the visibility and free-space maps) are small beside these.

A missing figure leaves that prediction unknown, never guessed; `--method auto` then chooses by safety alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rolegen.cluster.site_state import Member, SiteState
from rolegen.cluster.storage import Storage
from rolegen.procedures.rules import final_position, history, site_timeline

_MIB = 1 << 20
SEGMENT = 16 << 20  # the WAL segment size rolegen's specs keep (PostgreSQL's default)
RATE_WINDOW = 16 << 20  # a counted window of less WAL than this takes the member's early-cycle rate, when known


@dataclass(frozen=True)
class Prediction:
    rewind: int | None  # bytes; None: a figure is missing (`why`)
    reseed: int | None
    source: str | None = None  # the leading member whose figures were used
    target: str | None = None  # the returning member whose changed blocks were counted
    source_wal: int | None = None
    changed_blocks: int | None = None
    streamed_again: int | None = None
    block_size: int = 8192
    why: tuple[str, ...] = ()

    @property
    def favours_reseed(self) -> bool:
        """Both known, and a rewind would move at least as much as a re-seed."""
        return self.rewind is not None and self.reseed is not None and self.rewind >= self.reseed

    def as_dict(self) -> dict[str, Any]:
        return {"rewind_bytes": self.rewind, "reseed_bytes": self.reseed, "source": self.source,
                "target": self.target, "source_wal_bytes": self.source_wal, "changed_blocks": self.changed_blocks,
                "streamed_again_bytes": self.streamed_again, "unknown": list(self.why)}

    def lines(self) -> list[str]:
        if self.rewind is not None and self.changed_blocks is not None and self.source_wal is not None:
            rewind = (f"rewind: about {mib(self.rewind)} ({self.source}'s pg_wal {mib(self.source_wal)}, copied "
                      f"whole; {self.changed_blocks:,} blocks {self.target} changed since its last checkpoint, "
                      f"{mib(self.changed_blocks * self.block_size)}; the WAL since the divergence's segment, "
                      f"streamed again, {mib(self.streamed_again or 0)})")
        else:
            rewind = "rewind: unknown" + (f", at least {mib(self.source_wal)} ({self.source}'s pg_wal)"
                                          if self.source_wal is not None else "")
        reseed = (f"re-seed: about {mib(self.reseed)} ({self.source}'s databases)" if self.reseed is not None
                  else "re-seed: unknown")
        return [rewind, reseed, *(f"({why})" for why in self.why)]


def mib(count: int) -> str:
    return f"{count / _MIB:,.0f} MiB"


def predict(back: SiteState, cur: SiteState) -> Prediction:
    """What rewinding and re-seeding `back` from `cur`'s leading member would move over the link."""
    why: list[str] = []
    lead = cur.leader_member
    source = lead.storage if lead is not None else None
    if lead is None:
        why.append(f"{cur.environment} has no leading member")
    elif source is None:
        why.append(f"{lead.name} publishes no storage figures (the chart's startupGuard.figuresEvery)")
    target = _returning(back)
    blocks = again = None
    if target is None or target.storage is None:
        why.append(f"no member of {back.environment} published storage figures before it stopped")
    else:
        final = final_position(back)
        blocks = changed_blocks(target.storage, final.lsn if final is not None else None)
        if source is not None and lead is not None:
            again = streamed_again(back, cur, max(lead.lsn or 0, source.lsn), final.lsn if final else None)
    rewind = None
    if source is not None and target is not None and target.storage is not None and blocks is not None:
        rewind = source.wal_bytes + blocks * target.storage.block_size + (again or 0)
    return Prediction(
        rewind=rewind,
        reseed=source.data_bytes if source is not None else None,
        source=lead.name if lead is not None else None,
        target=target.name if target is not None else None,
        source_wal=source.wal_bytes if source is not None else None,
        changed_blocks=blocks,
        streamed_again=again,
        block_size=target.storage.block_size if target is not None and target.storage is not None else 8192,
        why=tuple(why),
    )


def _returning(back: SiteState) -> Member | None:
    """The member whose data a rewind starts from: the one that was furthest ahead at its last reading, a
    primary's reading first (a standby changes no block of its own)."""
    published = [m for m in back.members if m.storage is not None]
    return max(published, key=lambda m: (not m.storage.in_recovery, m.storage.lsn), default=None)  # type: ignore[union-attr]


def changed_blocks(storage: Storage, final_lsn: int | None) -> int:
    """Blocks changed since the last checkpoint: the images counted in the reading's window, and for the WAL
    outside it (from the checkpoint to the window, from the reading to `final_lsn`) as many as its rate: the
    window's own when it spans RATE_WINDOW of WAL, else the early-cycle rate the member measured, else the
    window's."""
    counted = storage.fpi_since_redo
    window = storage.lsn - storage.fpi_counted_from
    if window >= RATE_WINDOW or storage.fpi_per_mib is None:
        rate = counted / window if window > 0 else 0.0
    else:
        rate = storage.fpi_per_mib / _MIB
    outside = max(0, storage.fpi_counted_from - storage.redo_lsn) + max(0, (final_lsn or 0) - storage.lsn)
    return counted + round(rate * outside)


def streamed_again(back: SiteState, cur: SiteState, source_lsn: int, back_final: int | None) -> int:
    """The WAL from the start of the divergence's segment to the source's position: where `cur`'s history says
    `back`'s timeline ended there, else `back`'s own final position."""
    timeline = site_timeline(back)
    point = history(cur).get(timeline) if timeline is not None else None
    if point is None:
        point = back_final
    if point is None:
        return 0
    return max(0, source_lsn - (point - point % SEGMENT))

"""What a failback would move over the link, predicted from the members' published figures
(rolegen.procedures.failback_bytes): the parts a rewind moves, what a re-seed moves, and an unknown left unknown."""

from __future__ import annotations

import json

from rolegen.cluster.site_state import Member, SiteState
from rolegen.cluster.storage import Storage
from rolegen.procedures.failback_bytes import SEGMENT, changed_blocks, predict

MIB = 1 << 20
DIVERGED_AT = 0x4983D1E8  # where gold's timeline 3 ended on golddr (its history)


def storage(*, wal: int = 64 * MIB, data: int = 1600 * MIB, redo: int = 0x49000000, lsn: int = DIVERGED_AT,
            fpi: int = 3000, counted_from: int = 0x49000000, per_mib: float | None = None,
            in_recovery: bool = False) -> Storage:
    return Storage(in_recovery, wal, data, redo, lsn, fpi, 8192, counted_from, per_mib)


def member(name: str, role: str, lsn: int, figures: Storage | None, timeline: int = 3) -> Member:
    return Member(name, role, "running", timeline, lsn, None, container_running=True, storage=figures)


def site(env: str, members: list[Member], holder: str | None = None, history: list[list[int]] | None = None,
         ) -> SiteState:
    annotations = {"initialize": "7", "history": json.dumps(history or [])}
    lock = {"leader": holder} if holder else {}
    return SiteState(env, {}, "5", annotations, lock, members)


def pair_of(back_figures: list[Storage | None], lead_figures: Storage | None, source_lsn: int = 0x4AF04598,
            ) -> tuple[SiteState, SiteState]:
    back = site("gold", [member(f"gold-{n}", "replica", DIVERGED_AT, f) for n, f in enumerate(back_figures)])
    cur = site("golddr", [member("golddr-0", "leader", source_lsn, lead_figures, timeline=4)], holder="golddr-0",
               history=[[3, DIVERGED_AT, 0]])
    return back, cur


def test_a_rewind_is_the_source_wal_the_changed_blocks_and_the_wal_since_the_divergence_segment() -> None:
    back, cur = pair_of([storage(fpi=3725)], storage(wal=64 * MIB, lsn=0x4A000000))
    found = predict(back, cur)
    again = 0x4AF04598 - (DIVERGED_AT - DIVERGED_AT % SEGMENT)  # the source's position (Patroni's, fresher)
    assert (found.source, found.target, found.changed_blocks, found.streamed_again) == (
        "golddr-0", "gold-0", 3725, again)
    assert found.rewind == 64 * MIB + 3725 * 8192 + again
    assert found.reseed == 1600 * MIB
    assert found.lines()[0] == ("rewind: about 124 MiB (golddr-0's pg_wal 64 MiB, copied whole; 3,725 blocks gold-0 "
                                "changed since its last checkpoint, 29 MiB; the WAL since the divergence's segment, "
                                "streamed again, 31 MiB)")


def test_the_member_that_was_primary_at_its_last_reading_is_the_one_rewound() -> None:
    replica = storage(fpi=0, lsn=DIVERGED_AT + 100, in_recovery=True)
    back, cur = pair_of([replica, storage(fpi=500)], storage())
    assert (predict(back, cur).target, predict(back, cur).changed_blocks) == ("gold-1", 500)


def test_blocks_changed_after_the_last_reading_are_added_at_the_rate_counted() -> None:
    """100 images over 16 MiB of counted WAL; the member wrote 8 MiB more before it stopped."""
    figures = storage(redo=0x10000000, counted_from=0x10000000, lsn=0x11000000, fpi=100)
    assert changed_blocks(figures, 0x11800000) == 150


def test_a_short_window_takes_the_last_whole_cycles_rate() -> None:
    """The checkpoint began 1 MiB before the first reading that saw it, and the member wrote 3 MiB after the
    last: 4 MiB outside the window, at the last cycle's 10 images per MiB."""
    figures = storage(redo=0x10000000, counted_from=0x10100000, lsn=0x10200000, fpi=7, per_mib=10.0)
    assert changed_blocks(figures, 0x10500000) == 7 + 40


def test_no_wal_written_since_the_reading_adds_nothing() -> None:
    assert changed_blocks(storage(fpi=42), None) == 42


def test_a_leader_without_figures_leaves_both_unknown_and_says_why() -> None:
    back, cur = pair_of([storage()], None)
    found = predict(back, cur)
    assert (found.rewind, found.reseed) == (None, None)
    assert found.why == ("golddr-0 publishes no storage figures (the chart's startupGuard.figuresEvery)",)
    assert found.lines() == ["rewind: unknown", "re-seed: unknown", f"({found.why[0]})"]


def test_a_returning_site_without_figures_leaves_the_rewind_unknown_but_bounded() -> None:
    back, cur = pair_of([None, None], storage(wal=80 * MIB))
    found = predict(back, cur)
    assert found.rewind is None and found.reseed == 1600 * MIB
    assert found.lines()[0] == "rewind: unknown, at least 80 MiB (golddr-0's pg_wal)"
    assert found.why == ("no member of gold published storage figures before it stopped",)

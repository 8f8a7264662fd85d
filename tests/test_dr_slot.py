"""The DR slot callback (chart/files/dr_slot.py, Patroni's on_role_change): when it releases the WAL the slot
reserved from before the divergence, and when it must leave it. The SQL is PostgreSQL's on the lab
(tests/lab/test_lab_failover.py); here its decisions, on answers a fake psql gives."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("dr_slot", REPO / "chart/files/dr_slot.py")
assert SPEC is not None and SPEC.loader is not None
dr_slot = importlib.util.module_from_spec(SPEC)
sys.modules.setdefault("dr_slot", dr_slot)  # dataclasses look their module up there
SPEC.loader.exec_module(dr_slot)

HISTORY = "1\t0/3000060\tno recovery target specified\n\n2\t0/5A00148\tno recovery target specified\n"


def fake_psql(slot_rows: list[str], recovery: list[str] | None = None) -> tuple[Callable[[str], str], list[str]]:
    """A psql that answers the callback's statements: out of recovery after `recovery`, on timeline 3, the slot
    row from `slot_rows` one look after another (the last one repeats). Returns it and the statements run."""
    ran: list[str] = []
    recovering = list(recovery or [])
    rows = list(slot_rows)

    def run(statement: str) -> str:
        ran.append(statement)
        if "pg_is_in_recovery" in statement:
            return recovering.pop(0) if recovering else "f"
        if "pg_walfile_name(" in statement:
            return "000000030000000000000005"
        if "pg_read_file" in statement:
            assert "pg_wal/00000003.history" in statement
            return HISTORY
        if "FROM pg_catalog.pg_replication_slots" in statement:
            return rows.pop(0) if len(rows) > 1 else rows[0]
        return ""

    return run, ran


def release(run: Callable[[str], str], wait: float = 10.0) -> tuple[str, list[str]]:
    lines: list[str] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return dr_slot.release(run, "gold", wait, lines.append, sleep=sleep, clock=lambda: now[0]), lines


def test_the_switchpoint_is_the_last_line_of_the_timelines_history() -> None:
    assert dr_slot.switchpoint(HISTORY) == "0/5A00148"
    assert dr_slot.switchpoint("") is None and dr_slot.switchpoint("2\tgarbage\n") is None


def test_a_slot_reserving_wal_from_before_the_divergence_is_advanced_to_its_segment_then_checkpointed() -> None:
    # Still recovering, then no slot yet (Patroni creates it at its next loop), then Patroni's reservation.
    run, ran = fake_psql(["", "f|0/3000028|0/5000000|t"], recovery=["t"])
    outcome, lines = release(run)
    assert outcome == "advanced"
    advance = [s for s in ran if "pg_replication_slot_advance" in s]
    assert advance == ["SELECT pg_catalog.pg_replication_slot_advance('gold', '0/5000000')"]
    assert ran[-1] == "CHECKPOINT"  # the released segments go now, not at the next checkpoint_timeout
    # The target is computed by PostgreSQL from the switchpoint: the start of the segment holding the byte before it.
    [query] = {s for s in ran if "FROM pg_catalog.pg_replication_slots" in s}
    assert "pg_lsn('0/5A00148') - 1" in query and "pg_walfile_name_offset" in query
    assert lines == ["dr_slot: gold advanced from 0/3000028 to 0/5000000 (the divergence's segment)"]


@pytest.mark.parametrize(("row", "state"), [
    ("t|0/3000028|0/5000000|t", "active"),  # the other site streams: it moves the slot itself
    ("f|0/5000000|0/5000000|f", "released"),  # nothing from before the divergence's segment
])
def test_a_streaming_or_already_released_slot_is_left_alone(row: str, state: str) -> None:
    run, ran = fake_psql([row])
    outcome, lines = release(run)
    assert outcome == state and not any("advance" in s or s == "CHECKPOINT" for s in ran)
    assert lines == [f"dr_slot: gold left as it is ({state}, restart_lsn {row.split('|')[1]})"]


def test_a_slot_patroni_never_creates_is_given_up_on_after_the_wait_keeping_what_it_has() -> None:
    run, ran = fake_psql([""])
    outcome, lines = release(run, wait=5.0)
    assert outcome == "missing" and not any("advance" in s for s in ran)
    assert lines == ["dr_slot: gold not judged within 5s (missing); it keeps what Patroni reserved"]


def test_an_unreadable_history_is_an_error_never_a_guess() -> None:
    def run(statement: str) -> str:
        if "pg_is_in_recovery" in statement:
            return "f"
        return "000000030000000000000005" if "pg_walfile_name(" in statement else "not a history"

    with pytest.raises(ValueError, match="unreadable history"):
        dr_slot.release(run, "gold", 1.0, lambda _line: None)


@pytest.fixture
def patroni_yml(tmp_path: Path) -> Path:
    path = tmp_path / "patroni.yml"
    path.write_text(yaml.safe_dump({"postgresql": {"data_dir": str(tmp_path / "pgroot" / "data"),
                                                   "listen": "127.0.0.1:1"}}))
    (tmp_path / "pgroot").mkdir()
    return path


def test_the_connection_string_is_read_as_libpq_reads_it() -> None:
    assert dr_slot.conninfo("user=replicator host=10.0.0.7 port=5433 password='a b\\'c' sslmode=verify-full") == {
        "user": "replicator", "host": "10.0.0.7", "port": "5433", "password": "a b'c", "sslmode": "verify-full"}


def test_only_a_promotion_from_standby_cluster_releases_decided_before_it_at_pre_promote(
    patroni_yml: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = patroni_yml.parent / "pgroot" / dr_slot.MARKER
    released: list[str] = []
    monkeypatch.setattr(dr_slot, "release", lambda _run, slot, *_a, **_k: released.append(slot) or "advanced")
    upstream = ["host=patroni-0.patroni-headless.ns.svc port=5432 user=replicator"]  # a member of its own site
    peer = "patroni-master-golddr:5432"

    def sql(_yml: str, _env: dict[str, str]) -> Callable[[str], str]:
        return lambda statement: upstream[0] if "primary_conninfo" in statement else ""

    def promote() -> None:
        dr_slot.pre_promote(str(patroni_yml), "gold", peer, {}, print, sql=sql)
        dr_slot.on_role_change(str(patroni_yml), "gold", "primary", {}, print, sql=sql)

    promote()  # a failover inside the leading site: its standby site may lag behind the switch, the WAL stays
    assert released == [] and not marker.exists()
    assert "a promotion inside a primary cluster" in capsys.readouterr().out
    upstream[0] = "user=replicator host=patroni-master-golddr port=5432 sslmode=verify-full"  # the standby leader
    promote()
    assert released == ["gold"] and not marker.exists()  # once: the marker goes before the release
    dr_slot.on_role_change(str(patroni_yml), "gold", "primary", {}, print, sql=sql)
    assert released == ["gold"]
    # A promotion the next gate refused leaves a marker; the next pre_promote decides afresh, on its own look.
    dr_slot.pre_promote(str(patroni_yml), "gold", peer, {}, print, sql=sql)
    assert marker.exists()
    upstream[0] = "host=patroni-master-golddr port=6432"  # another port of that host is not the peer
    promote()
    assert released == ["gold"]
    dr_slot.on_role_change(str(patroni_yml), "gold", "replica", {}, print, sql=sql)  # other roles never release

    def silent(_yml: str, _env: dict[str, str]) -> Callable[[str], str]:
        def run(_statement: str) -> str:
            raise OSError("no socket")
        return run

    dr_slot.pre_promote(str(patroni_yml), "gold", peer, {}, print, sql=silent)  # no answer: no release
    assert not marker.exists() and "no answer before the promotion: no socket" in capsys.readouterr().out


def test_the_pre_promote_chain_hands_over_to_the_next_gate_whose_exit_code_is_patronis_answer(
    patroni_yml: Path,
) -> None:
    import subprocess

    base = [sys.executable, str(REPO / "chart/files/dr_slot.py"), "--pre-promote", str(patroni_yml), "gold",
            "patroni-master-golddr:5432"]
    # No PostgreSQL answers here (the look fails, logged): the chain goes on all the same.
    for code in (0, 1):
        done = subprocess.run([*base, sys.executable, "-c", f"raise SystemExit({code})"], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == code, done.stdout + done.stderr
        assert "dr_slot: gold will be left as it is" in done.stdout  # no PostgreSQL answers here
    assert subprocess.run(base, capture_output=True, timeout=30).returncode == 0


def test_a_bad_slot_name_or_call_is_a_usage_error(patroni_yml: Path) -> None:
    assert dr_slot.main([str(patroni_yml), "gold'; DROP", "on_role_change", "primary", "patroni"], {}) == 2
    assert dr_slot.main([str(patroni_yml), "gold"], {}) == 2
    assert dr_slot.main(["--pre-promote", str(patroni_yml), "gold'; DROP", "peer:5432"], {}) == 2
    assert dr_slot.main(["--pre-promote", str(patroni_yml), "gold"], {}) == 2

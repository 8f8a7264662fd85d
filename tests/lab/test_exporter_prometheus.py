"""`rolegen exporter` against the lab, scraped by a real Prometheus server (Debian's `prometheus`) that evaluates
the chart's alert rules: both sites up and gold leading as Prometheus stores them; the DR link cut, so the standby
stops streaming while its lag grows and the DR-link alert is pending; healed, streaming again and the alert gone.
The role flip and the lease during a role change are watched in test_switchover.py (its switchover, not another)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.lab import prometheus_lab
from tests.lab.prometheus_lab import query, wait_alert, wait_for
from tests.test_prometheus import promtool

from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab
STREAMING = 'rolegen_standby_streaming{site="golddr"}'
LAG = 'rolegen_standby_replay_lag_bytes{site="golddr"}'
LINK_DOWN = "RolegenDRLinkDown"


@pytest.fixture
def exporter(lab: Lab, tmp_path: Path) -> Iterator[str]:
    with prometheus_lab.exporter(lab, tmp_path) as address:
        yield address


@pytest.fixture
def prometheus(exporter: str, tmp_path: Path) -> Iterator[str]:
    with prometheus_lab.prometheus(exporter, tmp_path) as base:
        yield base


def test_prometheus_sees_the_pair_the_dr_link_cut_and_healed(lab: Lab, exporter: str, prometheus: str) -> None:
    wait_for(prometheus, 'up{job="rolegen"}', lambda v: v == 1, 60, "Prometheus to scrape the exporter")
    for site in ("gold", "golddr"):
        wait_for(prometheus, f'rolegen_site_up{{site="{site}"}}', lambda v: v == 1, 30, f"{site} up")
    wait_for(prometheus, 'rolegen_site_role{site="gold",source="live",role="leader"}', lambda v: v == 1, 30,
             "gold leading")
    wait_for(prometheus, STREAMING, lambda v: v == 1, 60, "golddr streaming")
    assert query(prometheus, "rolegen_exporter_reading_stale") == 0
    with urllib.request.urlopen(f"http://{exporter}/metrics", timeout=5) as answer:
        checked = promtool(answer.read().decode())
    assert checked.returncode == 0 and checked.stdout == "" and checked.stderr == "", checked
    before = wait_for(prometheus, LAG, lambda v: True, 30, "the replay lag")

    assert lab.cut() == ["gold", "golddr"]
    try:
        with psycopg.connect(lab.dsn("gold"), autocommit=True, connect_timeout=5) as conn:
            conn.execute("DROP TABLE IF EXISTS exporter_cut")
            conn.execute("CREATE TABLE exporter_cut AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, "
                         "20000) AS g")  # a few MB of WAL the standby cannot receive
        wait_for(prometheus, STREAMING, lambda v: v == 0, 60, "golddr to stop streaming")
        wait_for(prometheus, LAG, lambda v: v > before + 1_000_000, 60, "golddr's lag to grow")
        assert query(prometheus, "rolegen_pair_healthy") == 0
        # The chart's rule sees it at once; `for: 2m` keeps it pending (a cut shorter than that pages nobody).
        [pending] = wait_alert(prometheus, LINK_DOWN, "pending", 15)
        assert pending["labels"]["site"] == "golddr" and "rolegen reseed" in pending["annotations"]["runbook"]
        assert query(prometheus, f'ALERTS{{alertname="{LINK_DOWN}",alertstate="pending",site="golddr"}}') == 1
    finally:
        assert lab.heal() == ["gold", "golddr"]
    wait_for(prometheus, STREAMING, lambda v: v == 1, 90, "golddr streaming again")
    wait_for(prometheus, LAG, lambda v: v < 1_000_000, 60, "golddr to catch up")
    wait_alert(prometheus, LINK_DOWN, None, 15)
    assert query(prometheus, "rolegen_exporter_read_errors_total") == 0
    with psycopg.connect(lab.dsn("gold"), autocommit=True, connect_timeout=5) as conn:
        conn.execute("DROP TABLE exporter_cut")

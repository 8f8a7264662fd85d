"""`rolegen exporter` against the lab, scraped by a real Prometheus server (Debian's `prometheus`): both sites
up and gold leading as Prometheus stores them; the DR link cut, so the standby stops streaming while its lag
grows; healed, streaming again."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from tests.test_prometheus import promtool

from rolegen_lab.lab import Lab
from rolegen_lab.network.ports import reserve

pytestmark = pytest.mark.lab
PROMETHEUS = "/usr/bin/prometheus"
STREAMING = 'rolegen_standby_streaming{site="golddr"}'
LAG = 'rolegen_standby_replay_lag_bytes{site="golddr"}'


def _stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.fixture
def exporter(lab: Lab, tmp_path: Path) -> Iterator[str]:
    """`rolegen exporter` on the lab, reading every second; its address (host:port). Stopped with SIGTERM: exit 0."""
    log = (tmp_path / "exporter.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "rolegen", "exporter", "--dir", str(lab.env_dir), "--kubeconfig", str(lab.kubeconfig),
         "--listen", "127.0.0.1:0", "--interval", "1"],
        stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, found = time.monotonic() + 30, None
        while found is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            found = re.search(r"serving http://(\S+)/metrics", (tmp_path / "exporter.log").read_text())
        assert found, (tmp_path / "exporter.log").read_text()
        yield found.group(1)
        assert _stop(process) == 0, (tmp_path / "exporter.log").read_text()
    finally:
        _stop(process)
        log.close()


@pytest.fixture
def prometheus(exporter: str, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server scraping the exporter every second; its base URL."""
    if not shutil.which(PROMETHEUS):
        pytest.fail("prometheus is missing: apt-get install prometheus (.ci/run installs it)")
    port = reserve()
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": "rolegen", "static_configs": [{"targets": [exporter]}]}],
    }))
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
        log.close()


def query(base: str, expr: str) -> float | None:
    """The value of `expr` in Prometheus now (one series expected); None when it has none (or is not up yet)."""
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            found = json.load(answer)["data"]["result"]
    except OSError:
        return None
    assert len(found) <= 1, found
    return float(found[0]["value"][1]) if found else None


def wait_for(base: str, expr: str, test: Callable[[float], bool], timeout: float, what: str) -> float:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = query(base, expr)
        if last is not None and test(last):
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}: {expr} = {last}")


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
    finally:
        assert lab.heal() == ["gold", "golddr"]
    wait_for(prometheus, STREAMING, lambda v: v == 1, 90, "golddr streaming again")
    wait_for(prometheus, LAG, lambda v: v < 1_000_000, 60, "golddr to catch up")
    assert query(prometheus, "rolegen_exporter_read_errors_total") == 0
    with psycopg.connect(lab.dsn("gold"), autocommit=True, connect_timeout=5) as conn:
        conn.execute("DROP TABLE exporter_cut")

"""A real Prometheus server (Debian's `prometheus`) scraping `rolegen exporter` on the lab, with the chart's alert
rules loaded: for the lab modules that watch the pair through it (test_exporter_prometheus.py, and the
switchover the switchover module already runs). Every process started here is stopped on the way out."""

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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rolegen_lab.lab import Lab
from rolegen_lab.network.ports import reserve

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = "/usr/bin/prometheus"
RULES = REPO / "chart/files/rolegen-alerts.yaml"


def stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextmanager
def exporter(lab: Lab, workdir: Path) -> Iterator[str]:
    """`rolegen exporter` on the lab, reading every second; its address (host:port). Stopped with SIGTERM: exit 0."""
    path = workdir / "exporter.log"
    log = path.open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "rolegen", "exporter", "--dir", str(lab.env_dir), "--kubeconfig", str(lab.kubeconfig),
         "--listen", "127.0.0.1:0", "--interval", "1"],
        stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, found = time.monotonic() + 30, None
        while found is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            found = re.search(r"serving http://(\S+)/metrics", path.read_text())
        assert found, path.read_text()
        yield found.group(1)
        assert stop(process) == 0, path.read_text()
    finally:
        stop(process)
        log.close()


@contextmanager
def prometheus(target: str, workdir: Path) -> Iterator[str]:
    """A Prometheus server scraping `target` every second and evaluating the chart's alert rules every second
    (their `for:` unchanged: an alert of `for: 2m` shows pending within seconds); its base URL."""
    if not shutil.which(PROMETHEUS):
        pytest.fail("prometheus is missing: apt-get install prometheus (.ci/run installs it)")
    port = reserve()
    config = workdir / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "rolegen", "static_configs": [{"targets": [target]}]}],
    }))
    log = (workdir / "prometheus.log").open("w")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()


def _get(base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base}{path}", timeout=5) as answer:
        return json.load(answer)["data"]


def query(base: str, expr: str) -> float | None:
    """The value of `expr` in Prometheus now (one series expected); None when it has none (or is not up yet)."""
    try:
        found = _get(base, f"/api/v1/query?{urllib.parse.urlencode({'query': expr})}")["result"]
    except OSError:
        return None
    assert len(found) <= 1, found
    return float(found[0]["value"][1]) if found else None


def alerts(base: str, name: str) -> list[dict[str, Any]]:
    """The alerts named `name` Prometheus has now, pending or firing (its /api/v1/alerts)."""
    try:
        return [a for a in _get(base, "/api/v1/alerts")["alerts"] if a["labels"].get("alertname") == name]
    except OSError:
        return []


def wait_for(base: str, expr: str, test: Callable[[float], bool], timeout: float, what: str) -> float:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = query(base, expr)
        if last is not None and test(last):
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}: {expr} = {last}")


def wait_alert(base: str, name: str, state: str | None, timeout: float) -> list[dict[str, Any]]:
    """Wait until the alerts named `name` are all in `state` (`pending`, `firing`), or gone (`state` None)."""
    deadline, seen = time.monotonic() + timeout, alerts(base, name)
    while time.monotonic() < deadline:
        seen = alerts(base, name)
        if (state is None and not seen) or (seen and all(a["state"] == state for a in seen)):
            return seen
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {name} {state or 'gone'}: {seen}")

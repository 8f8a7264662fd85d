"""`rolegen exporter` (rolegen.commands.exporter) without a cluster: a fake reading in, what a scrape gets out;
the last good reading served and marked stale when a read fails, the exporter's own metrics, /healthz, the CLI's
options and usage errors, SIGTERM and Ctrl-C on the real process, and `promtool check metrics` on a real scrape."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.test_prometheus import promtool
from tests.test_status import live, state  # noqa: F401 - the fixture
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.commands import exporter as exporter_cmd
from rolegen.commands import status as status_cmd
from rolegen.errors import RolegenError, UsageError
from rolegen.prometheus import Family

runner = CliRunner()


def reading(streaming: bool = True) -> list[Family]:
    return [Family("rolegen_site_up", "Site up.").add(1, site="b").add(1, site="a"),
            Family("rolegen_standby_streaming", "Streams.").add(streaming, site="b")]


class FakeReader:
    """Answers each read with the next of `answers`: a list of families, or an exception to raise."""

    def __init__(self, *answers: list[Family] | Exception) -> None:
        self.answers = list(answers)

    def __call__(self) -> list[Family]:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def fake_exporter(read: Callable[[], list[Family]], log: list[str] | None = None) -> exporter_cmd.Exporter:
    """Clock at 1000, 1010, ...; each read takes 0.25 s."""
    clock = itertools.count(1000, 10)
    timer = itertools.count(0, 0.25)
    sink = log if log is not None else []
    return exporter_cmd.Exporter(read, 15, log=sink.append, clock=lambda: float(next(clock)),
                                 timer=lambda: float(next(timer)))


def samples(text: str) -> dict[str, str]:
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def test_before_the_first_read_only_the_exporters_own_metrics_are_served_and_stale() -> None:
    got = samples(fake_exporter(FakeReader(reading())).metrics())
    assert got == {"rolegen_exporter_reads_total": "0", "rolegen_exporter_read_errors_total": "0",
                   "rolegen_exporter_reading_stale": "1", "rolegen_exporter_read_interval_seconds": "15"}


def test_a_good_read_is_served_with_its_time_and_duration() -> None:
    exporter = fake_exporter(FakeReader(reading()))
    assert exporter.read_once() is True
    got = samples(exporter.metrics())
    assert got['rolegen_site_up{site="a"}'] == "1" and got['rolegen_standby_streaming{site="b"}'] == "1"
    assert got["rolegen_exporter_last_read_timestamp_seconds"] == "1000"
    assert got["rolegen_exporter_read_duration_seconds"] == "0.25"
    assert (got["rolegen_exporter_reads_total"], got["rolegen_exporter_reading_stale"]) == ("1", "0")


def test_a_failed_read_keeps_the_last_good_reading_marks_it_stale_and_logs_once() -> None:
    log: list[str] = []
    boom = RolegenError("cannot reach the cluster of context gold", hint="check the kubeconfig")
    exporter = fake_exporter(FakeReader(reading(), boom, boom, reading(streaming=False)), log)
    assert [exporter.read_once() for _ in range(3)] == [True, False, False]
    got = samples(exporter.metrics())
    assert got['rolegen_standby_streaming{site="b"}'] == "1"  # the last good reading, not dropped
    assert got["rolegen_exporter_reading_stale"] == "1"
    assert (got["rolegen_exporter_reads_total"], got["rolegen_exporter_read_errors_total"]) == ("3", "2")
    assert got["rolegen_exporter_last_read_timestamp_seconds"] == "1000"  # still the good read's time
    assert log == ["error: reading the pair failed: cannot reach the cluster of context gold (hint: check the "
                   "kubeconfig); serving the last good reading, marked stale"]  # once, not per read
    assert exporter.read_once() is True
    got = samples(exporter.metrics())
    assert got['rolegen_standby_streaming{site="b"}'] == "0" and got["rolegen_exporter_reading_stale"] == "0"
    assert log[-1] == "read the pair again (2 failed reads so far)"


def test_an_unexpected_exception_is_counted_with_its_traceback_and_never_stops_the_exporter() -> None:
    log: list[str] = []
    exporter = fake_exporter(FakeReader(ZeroDivisionError("division by zero")), log)
    assert exporter.read_once() is False
    assert samples(exporter.metrics())["rolegen_exporter_read_errors_total"] == "1"
    assert log[0].startswith("error: reading the pair failed: ZeroDivisionError: division by zero")
    assert "Traceback" in log[1]


def test_output_is_deterministic_and_sorted_given_a_reading() -> None:
    one, other = fake_exporter(FakeReader(reading())), fake_exporter(FakeReader(reading()))
    one.read_once()
    other.read_once()
    text = one.metrics()
    assert text == other.metrics() == one.metrics()
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert names == sorted(names)
    assert [line for line in text.splitlines() if line.startswith("rolegen_site_up")] == [
        'rolegen_site_up{site="a"} 1', 'rolegen_site_up{site="b"} 1']


def test_the_pair_part_is_what_status_prints_as_prometheus(live: dict[str, Any], workdir: Path) -> None:  # noqa: F811
    live.update(gold=state("gold", "leader", lsn=90_000), golddr=state("golddr", "standby-leader", lsn=80_000))
    exporter = fake_exporter(lambda: status_cmd.pair_metrics(status_cmd.run(Path("environments"))))
    exporter.read_once()
    served = [line for line in exporter.metrics().splitlines() if "rolegen_exporter_" not in line]
    printed = runner.invoke(app, ["status", "-f", "prometheus"])
    assert printed.exit_code == 0, printed.output
    assert served == printed.stdout.splitlines()


@contextmanager
def serving(exporter: exporter_cmd.Exporter) -> Iterator[str]:
    server = exporter_cmd.bind(exporter, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_a_real_scrape_passes_promtool_and_healthz_answers(live: dict[str, Any], workdir: Path) -> None:  # noqa: F811
    live.update(gold=state("gold", "leader", lsn=90_000), golddr=state("golddr", "standby-leader", lsn=80_000))
    exporter = exporter_cmd.Exporter(lambda: status_cmd.pair_metrics(status_cmd.run(Path("environments"))))
    exporter.read_once()
    with serving(exporter) as base:
        code, kind, text = get(f"{base}/metrics")
        assert (code, kind) == (200, "text/plain; version=0.0.4; charset=utf-8")
        assert "rolegen_pair_healthy 1" in text.splitlines() and "rolegen_exporter_reads_total 1" in text
        checked = promtool(text)
        assert checked.returncode == 0 and checked.stdout == "" and checked.stderr == "", checked
        assert get(f"{base}/healthz")[::2] == (200, "ok\n")
        assert get(f"{base}/nothing")[0] == 404


def test_run_reads_every_interval_serves_and_stops() -> None:
    stop, log = threading.Event(), []
    reads = threading.Semaphore(0)

    def read() -> list[Family]:
        reads.release()
        return reading()

    done: list[exporter_cmd.ExporterResult] = []
    thread = threading.Thread(target=lambda: done.append(exporter_cmd.run(
        read, "127.0.0.1:0", 0.05, log=log.append, stop=stop)))
    thread.start()
    try:
        assert all(reads.acquire(timeout=5) for _ in range(3)), "three reads, 0.05 s apart"
        url = re.search(r"serving (http://\S+/metrics)", log[0])
        assert url, log
        assert 'rolegen_site_up{site="a"} 1' in get(url.group(1))[2]
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive() and done[0].reads >= 3 and done[0].errors == 0
    assert done[0].lines()[0].startswith(f"stopped serving {url.group(1)}: ")


@pytest.mark.parametrize(("text", "expected"), [
    ("0.0.0.0:9847", ("0.0.0.0", 9847)), (":9847", ("0.0.0.0", 9847)), ("127.0.0.1:0", ("127.0.0.1", 0)),
    ("[::]:9847", ("::", 9847)), ("[::1]:80", ("::1", 80)),
])
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert exporter_cmd.parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9847", "host", "host:", "host:http", "host:70000", "::1:80"])
def test_bad_listen_addresses_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="expected HOST:PORT"):
        exporter_cmd.parse_listen(text)


@pytest.mark.parametrize(("args", "expected"), [
    (["--listen", "nowhere"], "error: --listen 'nowhere': expected HOST:PORT"),
    (["--interval", "0"], "--interval"),
    (["--interval", "soon"], "--interval"),
])
def test_cli_usage_errors_exit_2(workdir: Path, args: list[str], expected: str) -> None:
    result = runner.invoke(app, ["exporter", *args])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr


def test_cli_help_names_the_options_and_a_broken_workspace_fails_at_start(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    shown = runner.invoke(app, ["exporter", "--help"], terminal_width=200)
    assert shown.exit_code == 0
    for option in ("--listen", "--interval", "--kubeconfig", "--kube-client", "--dir", "0.0.0.0:9847", "15"):
        assert option in shown.stdout, option
    monkeypatch.chdir(tmp_path)  # no environments/ here: refused before anything listens
    result = runner.invoke(app, ["exporter", "--listen", "127.0.0.1:0"])
    assert result.exit_code == 1 and result.stderr.startswith("error: "), result.output


def test_cli_refuses_a_port_in_use_with_a_hint(workdir: Path) -> None:
    holder = exporter_cmd.bind(exporter_cmd.Exporter(FakeReader(reading())), "127.0.0.1", 0)
    try:
        result = runner.invoke(app, ["exporter", "--listen", f"127.0.0.1:{holder.server_address[1]}"])
    finally:
        holder.server_close()
    assert result.exit_code == 1
    assert "error: cannot listen on 127.0.0.1:" in result.stderr and "hint: " in result.stderr


def _start(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    """The real `rolegen exporter` (no cluster: both sites unreachable), and its /metrics URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rolegen", "exporter", "--listen", "127.0.0.1:0", "--interval", "60",
         "--kubeconfig", str(workdir / "no-kubeconfig")],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Python turns SIGINT into KeyboardInterrupt only when it starts with the default action for it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    found = re.search(r"serving (http://\S+/metrics)", line)
    if not found:
        process.kill()
        pytest.fail(f"no serving line: {line!r} {process.communicate()}")
    return process, found.group(1)


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["term", "int"])
def test_the_process_stops_cleanly_on_sigterm_and_ctrl_c(workdir: Path, sent: int, code: int) -> None:
    process, url = _start(workdir)
    try:
        assert get(url.replace("/metrics", "/healthz"))[::2] == (200, "ok\n")
        os.kill(process.pid, sent)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code, (out, err)
    if code == 0:
        assert out.startswith(f"stopped serving {url}: ") and "SIGTERM: stopping" in err
    else:
        assert "error: interrupted" in err and "Traceback" not in err

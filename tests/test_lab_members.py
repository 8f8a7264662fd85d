"""A lab member stopped from two threads at once (a Pod's deletion and the lab's own stop): the second stopper waits
for the first and finds nothing left to stop, and the member reads as running until its stop has ended."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from rolegen_lab.node.members import LabMember
from rolegen_lab.node.runtime import MemberRuntime, spawn

# A process that ignores SIGTERM: each stop lasts its whole timeout before the SIGKILL.
_STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
             "time.sleep(60)")


def _member(tmp_path: Path) -> LabMember:
    runtime = MemberRuntime(Path(sys.executable), tmp_path, drop_privileges=False)
    member = LabMember("m-0", tmp_path, runtime, pg_port=1, rest_port=2)
    member.process = spawn(runtime, [sys.executable, "-c", _STUBBORN], {}, tmp_path / "m.log", tmp_path)
    deadline = time.monotonic() + 10
    while b"up" not in (tmp_path / "m.log").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.02)
    return member


def test_two_stops_at_once_both_end_and_the_member_is_stopped(tmp_path: Path) -> None:
    member = _member(tmp_path)
    assert member.process is not None
    pid = member.process.process.pid
    process_stop, calls = member.process.stop, []

    def counted(timeout: float = 20) -> int:
        calls.append(timeout)
        return process_stop(timeout)

    member.process.stop = counted  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def stop() -> None:
        try:
            member.stop(timeout=1)
        except BaseException as e:  # the failure is the assertion below
            errors.append(e)

    threads = [threading.Thread(target=stop) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    assert member.running, "a member whose stop has not ended must still read as running"
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert calls == [1], "the second stopper must find the member stopped, not stop its process again"
    assert not member.running
    assert member.process is None
    assert _zombie_or_gone(pid)


def test_kill_while_a_stop_runs_waits_for_it(tmp_path: Path) -> None:
    member = _member(tmp_path)
    stopper = threading.Thread(target=member.stop, kwargs={"timeout": 1})
    stopper.start()
    time.sleep(0.2)
    member.kill()  # must not find a half-stopped member (it used to call .stop() on None)
    stopper.join(20)
    assert member.process is None and not member.running


def _zombie_or_gone(pid: int) -> bool:
    try:
        return "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return True


def test_a_restart_asks_patroni_as_patronictl_does_with_the_charts_basic_auth(tmp_path: Path) -> None:
    """The lab's `restart_postgres` (drill restart-at-demotion) is a POST /restart to the member's own Patroni,
    with the REST API's credentials from the container's environment when the chart sets them."""
    import base64
    import http.server

    seen: list[tuple[str, str, str | None]] = []

    class Patroni(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path, self.headers.get("Authorization")))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Patroni)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        runtime = MemberRuntime(Path(sys.executable), tmp_path, drop_privileges=False)
        member = LabMember("m-0", tmp_path, runtime, pg_port=1, rest_port=server.server_address[1])
        member._rest_auth = ("admin", "s3cret")
        assert member.restart_postgres() == 202
    finally:
        server.shutdown()
        server.server_close()
    token = base64.b64encode(b"admin:s3cret").decode()
    assert seen == [("POST", "/restart", f"Basic {token}")]

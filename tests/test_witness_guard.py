"""The leader site's witness guard (chart/files/witness-guard.py), run as the container runs it: a real process
supervising a command, against small HTTP servers standing in for the witness API server, the standby's guard,
Patroni's REST API and the site's own API server. Timers are scaled down (fence_after 1.5 s); the orders between
them are the bundled ones. The rules it applies are model-checked in tests/test_witness_rules.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rolegen_lab import clock

REPO = Path(__file__).resolve().parent.parent
GUARD = REPO / "chart/files/witness-guard.py"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/witness/leases/patroni-pair"
CONFIG = "/api/v1/namespaces/site/configmaps/patroni-config"
TIMERS = {"WITNESS_FENCE_AFTER": "4", "WITNESS_MARGIN": "1", "WITNESS_RENEW_EVERY": "1",
          "WITNESS_REQUEST_TIMEOUT": "0.7"}
# What a busy CI machine (two labs beside these tests) may add to the guard's reaction, in seconds.
SLACK = 1.0


@dataclass
class World:
    """What the fake servers answer; `up` per party: False makes it answer 503 (as good as no answer)."""

    up: dict[str, bool] = field(default_factory=lambda: {"witness": True, "standby": True, "patroni": True})
    lease: dict[str, Any] | None = None
    version: int = 1
    renewals: int = 0
    config: dict[str, Any] = field(default_factory=lambda: {"ttl": 20})
    promises: int = 0
    answered: list[float] = field(default_factory=list)  # when a renewal or a promise was applied (monotonic)
    replication: list[dict[str, Any]] = field(default_factory=list)  # pg_stat_replication, as /patroni shows it
    said: list[tuple[float, str | None]] = field(default_factory=list)  # (when, rolegen.io/synchronous) per renewal
    events: list[dict[str, Any]] = field(default_factory=list)  # Events the guard wrote on its site's API
    renewed_between: int = 0  # PUTs preceded by another renewal of the same holder (a 409 for the guard's)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _server(world: World) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")

        def do_GET(self) -> None:
            with world.lock:
                if self.path == "/patroni":
                    if not world.up["patroni"]:
                        return self._send(503, {})
                    return self._send(200, {"role": "primary", "state": "running", "xlog": {"location": 4242},
                                            **({"replication": world.replication} if world.replication else {})})
                if self.path == CONFIG:
                    return self._send(200, {"metadata": {"resourceVersion": "7", "annotations": {
                        "config": json.dumps(world.config)}}})
                if not world.up["witness"]:
                    return self._send(503, {})
                if world.lease is None:
                    return self._send(404, {})
                return self._send(200, {**world.lease, "metadata": {**world.lease["metadata"],
                                                                     "resourceVersion": str(world.version)}})

        def do_PATCH(self) -> None:
            body = self._body()
            with world.lock:
                world.config = json.loads(body["metadata"]["annotations"]["config"])
                self._send(200, {})

        def do_POST(self) -> None:
            body = self._body()
            with world.lock:
                if self.path == "/api/v1/namespaces/site/events":
                    world.events.append(body)
                    return self._send(201, body)
                if self.path == "/promise":
                    if not world.up["standby"]:
                        return self._send(503, {})
                    world.promises += 1
                    world.answered.append(time.monotonic())
                    return self._send(200, {"granted": True})
                if not world.up["witness"]:
                    return self._send(503, {})
                world.lease, world.version, world.renewals = body, world.version + 1, world.renewals + 1
                self._send(201, {})

        def do_PUT(self) -> None:
            body = self._body()
            with world.lock:
                if not world.up["witness"]:
                    return self._send(503, {})
                if world.renewed_between:
                    world.renewed_between -= 1
                    world.version += 1
                if body["metadata"].get("resourceVersion") != str(world.version):
                    return self._send(409, {})
                world.lease, world.version, world.renewals = body, world.version + 1, world.renewals + 1
                world.answered.append(time.monotonic())
                world.said.append((time.monotonic(), body["metadata"]["annotations"].get("rolegen.io/synchronous")))
                self._send(200, {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[World, dict[str, str]]]:
    state = World()
    server = _server(state)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({"current-context": "site", "contexts": [
        {"name": "site", "context": {"cluster": "site"}}], "clusters": [{"name": "site", "cluster": {"server": url}}]}))
    (tmp_path / "patroni.yml").write_text(json.dumps({"scope": "patroni", "kubernetes": {"namespace": "site"}}))
    (tmp_path / "data").mkdir()
    env = {**os.environ, **TIMERS, "WITNESS_MODE": "automatic", "WITNESS_SITE": "gold", "WITNESS_SERVER": url,
           "WITNESS_NAMESPACE": "witness", "WITNESS_LEASE": "patroni-pair", "WITNESS_PROMISE_URL": url,
           "WITNESS_PATRONI_URL": url, "WITNESS_CREDENTIALS": str(tmp_path / "none"), "KUBECONFIG": str(kubeconfig),
           "WITNESS_PATRONI_YML": str(tmp_path / "patroni.yml"), "GUARD_PEER_HOST": "patroni-master-golddr",
           "GUARD_PEER_PORT": "5432", "WITNESS_DATA_DIR": str(tmp_path / "data"),
           "WITNESS_STATE_FILE": str(tmp_path / "state.json"), "WITNESS_FENCE_WRITE_FOR": "5"}
    yield state, env
    server.shutdown()
    server.server_close()


POSTMASTER = """
import os, subprocess, sys, time
# a backend: a session leader of its own, as PostgreSQL's children are (they call setsid)
backend = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
open(sys.argv[1], "w").write(str(backend.pid))
time.sleep(120)
"""


def _postmaster(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A stand-in postmaster in a session of its own (as Patroni starts it), its pid where PostgreSQL writes it,
    with one backend in a session of its own (`_backend`)."""
    marker = Path(env["WITNESS_DATA_DIR"], "backend.pid")
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", POSTMASTER, str(marker)], start_new_session=True)
    Path(env["WITNESS_DATA_DIR"], "postmaster.pid").write_text(f"{proc.pid}\n/data\n")
    deadline = time.monotonic() + 10
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def _backend(env: dict[str, str]) -> int:
    return int(Path(env["WITNESS_DATA_DIR"], "backend.pid").read_text())


def _state(pid: int) -> str:
    """/proc's state letter of `pid` (T stopped, Z or absent: dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except OSError:
        return "X"


def _guard(env: dict[str, str], *command: str) -> subprocess.Popen[str]:
    """The guard supervising a stand-in Patroni whose member was promoted through `--pre-promote` (as Patroni's
    pre_promote runs it): the lease it got is the guard's first."""
    promoted = subprocess.run([sys.executable, str(GUARD), "--pre-promote"], env=env, capture_output=True, text=True)
    assert promoted.returncode == 0, promoted.stderr
    child = command or (sys.executable, "-c", "import time; time.sleep(120)")
    return subprocess.Popen([sys.executable, str(GUARD), *child], env=env, stderr=subprocess.PIPE, text=True)


def _ends_within(proc: subprocess.Popen[str], seconds: float) -> tuple[int | None, str]:
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the guard hands SIGTERM to its command's group, as the kubelet's stop does
        return None, proc.communicate(timeout=10)[1]
    return proc.returncode, proc.communicate()[1]


@pytest.mark.parametrize("down", ["witness", "standby"])
def test_the_leader_keeps_running_while_it_sees_either_partner(world: tuple[World, dict[str, str]],
                                                               down: str) -> None:
    state, env = world
    postmaster = _postmaster(env)
    guard = _guard(env)
    state.up[down] = False
    try:
        code, log = _ends_within(guard, 9)  # over two fence_after
        assert code is None, log  # still supervising: no fence
        assert postmaster.poll() is None and "decision=fence" not in log
        if down == "standby":  # the Lease was renewed, the site's position published with it
            assert state.renewals >= 5 and state.lease is not None
            assert state.lease["metadata"]["annotations"]["rolegen.io/lsn"] == "4242"
            assert state.lease["spec"]["holderIdentity"] == "gold"
        else:
            assert state.promises >= 5
    finally:
        postmaster.kill()
        postmaster.wait()


def test_a_leader_that_sees_neither_partner_stops_writing_and_fences_its_site(
        world: tuple[World, dict[str, str]]) -> None:
    state, env = world
    postmaster = _postmaster(env)
    guard = _guard(env)
    time.sleep(1.0)
    state.up.update(witness=False, standby=False)
    cut = time.monotonic()
    code, log = _ends_within(guard, 12)
    stopped = time.monotonic()
    assert code == 1, log
    assert postmaster.wait(1) == -9  # SIGKILLed: no commit after the fence
    # within fence_after of the last request that succeeded (sent before the cut), plus the loop's step
    assert stopped - cut < 4 + SLACK, log
    assert state.config["standby_cluster"] == {"host": "patroni-master-golddr", "port": 5432}
    assert state.config["ttl"] == 20  # the rest of the DCS config kept
    assert "decision=fence" in log and "neither the witness nor the standby's guard answered" in log


def _stopped(proc: subprocess.Popen[bytes]) -> bool:
    """The process is stopped (SIGSTOP)."""
    return _state(proc.pid) == "T"


def test_a_leader_cut_from_both_partners_stalls_its_commits_at_once_and_resumes_when_one_answers(
        world: tuple[World, dict[str, str]]) -> None:
    """Data Guard's primary stalls when it sees neither partner: PostgreSQL is stopped (nothing acknowledged)
    after one failed round (renew_every + request_timeout), long before the fence, and goes on when a partner
    answers again; cut long enough, the stalled primary is fenced all the same."""
    state, env = world
    postmaster = _postmaster(env)
    guard = _guard(env)
    time.sleep(0.6)
    state.up.update(witness=False, standby=False)
    cut = time.monotonic()
    while not _stopped(postmaster) and time.monotonic() - cut < 4:
        time.sleep(0.02)
    assert _stopped(postmaster) and time.monotonic() - cut < 1 + 0.7 + 0.2 + SLACK  # a round, a step
    backend = _backend(env)
    time.sleep(0.1)  # the postmaster is stopped first, its children a moment later
    assert _state(backend) == "T"  # the backends too: they are the ones that commit
    state.up["standby"] = True
    time.sleep(1.5)
    assert not _stopped(postmaster) and _state(backend) != "T" and guard.poll() is None
    state.up["standby"] = False
    code, log = _ends_within(guard, 8)
    assert code == 1 and postmaster.wait(1) == -9, log
    time.sleep(0.1)
    assert _state(backend) in "ZX"  # killed with it
    assert "decision=stall" in log and "decision=resume" in log and "decision=fence" in log


def test_a_hung_patroni_does_not_end_the_guarding_of_its_primary(world: tuple[World, dict[str, str]]) -> None:
    """Patroni stops answering (SIGSTOPped, hung) while its PostgreSQL may still be a primary: the guard keeps
    renewing, publishes the position as unknown (never a stale one), and still fences when both partners go."""
    state, env = world
    postmaster = _postmaster(env)
    guard = _guard(env)
    time.sleep(1.5)
    state.up["patroni"] = False
    time.sleep(2.5)
    renewed = state.renewals
    time.sleep(2.5)
    assert state.renewals > renewed and guard.poll() is None
    assert state.lease is not None and state.lease["metadata"]["annotations"]["rolegen.io/lsn"] == ""
    state.up.update(witness=False, standby=False)
    code, log = _ends_within(guard, 10)
    assert code == 1 and postmaster.wait(1) == -9, log


def test_a_lease_taken_by_the_standby_site_fences_at_once(world: tuple[World, dict[str, str]]) -> None:
    state, env = world
    postmaster = _postmaster(env)
    guard = _guard(env)
    time.sleep(1.5)
    with state.lock:
        assert state.lease is not None
        state.lease["spec"]["holderIdentity"] = "golddr"
        state.version += 1
    taken = time.monotonic()
    code, log = _ends_within(guard, 6)
    assert time.monotonic() - taken < 1 + SLACK, log  # the next renewal, not fence_after
    assert code == 1 and postmaster.wait(1) == -9, log
    assert "held by golddr" in log and state.config.get("standby_cluster")


def test_a_promotion_needs_a_fresh_lease(world: tuple[World, dict[str, str]]) -> None:
    state, env = world
    state.up.update(witness=False, standby=False)
    refused = subprocess.run([sys.executable, str(GUARD), "--pre-promote"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "decision=refuse-promotion" in refused.stderr
    assert not Path(env["WITNESS_STATE_FILE"]).exists()
    state.up["witness"] = True
    allowed = subprocess.run([sys.executable, str(GUARD), "--pre-promote"], env=env, capture_output=True, text=True)
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(Path(env["WITNESS_STATE_FILE"]).read_text())["witness_sent"] > 0
    state.lease["spec"]["holderIdentity"] = "golddr"  # type: ignore[index]
    taken = subprocess.run([sys.executable, str(GUARD), "--pre-promote"], env=env, capture_output=True, text=True)
    assert taken.returncode == 1 and "held by golddr" in taken.stderr


def test_a_promotion_with_the_lease_does_not_wait_for_a_peer_guard_that_never_answers(
        world: tuple[World, dict[str, str]]) -> None:
    """A site loss: the peer's guard behind the tunnel accepts and never answers. The Lease renewed is what a
    promotion needs; waiting for the promise too cost pre_promote a whole request_timeout (4 s of a 5 s budget
    with the default timers, bench --timers production)."""
    _, env = world
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the backlog; nothing is ever read or answered
    try:
        env = {**env, "WITNESS_PROMISE_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
               "WITNESS_FENCE_AFTER": "60", "WITNESS_MARGIN": "20", "WITNESS_RENEW_EVERY": "20",
               "WITNESS_REQUEST_TIMEOUT": "15"}
        started = time.monotonic()
        allowed = subprocess.run([sys.executable, str(GUARD), "--pre-promote"], env=env, capture_output=True,
                                 text=True, timeout=60)
        took = time.monotonic() - started
    finally:
        silent.close()
    assert allowed.returncode == 0, allowed.stderr
    assert "decision=allow-promotion witness=True promise=False" in allowed.stderr
    assert took < 10, f"pre_promote waited {took:.1f}s for the silent peer (request_timeout 15 s)"


def test_a_primary_no_pre_promote_ran_for_asks_at_once_and_runs_only_on_an_answer(
        world: tuple[World, dict[str, str]]) -> None:
    """No pre_promote record (a new cluster's bootstrap, Patroni restarting on its own lock): the guard asks both
    partners before anything else. Neither answers: fenced at once, not fence_after later. One answers: it runs."""
    state, env = world
    state.up.update(witness=False, standby=False)
    postmaster = _postmaster(env)
    started = time.monotonic()
    guard = subprocess.Popen([sys.executable, str(GUARD), sys.executable, "-c", "import time; time.sleep(120)"],
                             env=env, stderr=subprocess.PIPE, text=True)
    code, log = _ends_within(guard, 6)
    assert code == 1 and postmaster.wait(1) == -9, log
    assert time.monotonic() - started < 0.7 + 1 + SLACK, log  # its first look, not fence_after
    state.up["witness"] = True
    postmaster = _postmaster(env)
    guard = subprocess.Popen([sys.executable, str(GUARD), sys.executable, "-c", "import time; time.sleep(120)"],
                             env=env, stderr=subprocess.PIPE, text=True)
    try:
        code, log = _ends_within(guard, 5)
        assert code is None and postmaster.poll() is None, log
    finally:
        postmaster.kill()
        postmaster.wait()


def test_without_automatic_mode_the_guard_is_just_its_command(world: tuple[World, dict[str, str]]) -> None:
    _, env = world
    env = {**env, "WITNESS_MODE": "manual"}
    done = subprocess.run([sys.executable, str(GUARD), sys.executable, "-c", "raise SystemExit(7)"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 7 and done.stderr == ""
    assert subprocess.run([sys.executable, str(GUARD), "--pre-promote"], env=env).returncode == 0


def test_the_rules_the_container_runs_are_the_ones_rolegen_model_checks() -> None:
    product = REPO / "generator/rolegen/witness/rules.py"
    assert product.is_symlink() and product.resolve() == (REPO / "chart/files/witness_rules.py").resolve()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_link_schedules_never_leave_a_primary_running_without_a_lease(
        world: tuple[World, dict[str, str]], seed: int) -> None:
    """Both partners go down and up at random (0.2-3 s spells, often both at once) for 14 s. At every look, a
    running primary had a request applied within fence_after (plus the loop's step); and it fences only once
    neither partner answered for fence_after."""
    import random

    state, env = world
    rng = random.Random(seed)
    postmaster = _postmaster(env)
    guard = _guard(env)
    fence_after, renew_every, step = 4.0, 1.0, 0.45 + SLACK  # it looks every 0.2 s; a request applied was sent earlier
    sure = time.monotonic()  # --pre-promote's lease
    died: float | None = None
    try:
        end = time.monotonic() + 14
        while time.monotonic() < end and died is None:
            with state.lock:
                state.up["witness"], state.up["standby"] = rng.random() < 0.5, rng.random() < 0.5
                some_up = state.up["witness"] or state.up["standby"]
            spell_start = time.monotonic()
            spell_end = spell_start + rng.uniform(0.2, 3.0)
            while time.monotonic() < spell_end:
                now = time.monotonic()
                if some_up and now - spell_start >= renew_every + 0.1:
                    # up for a whole tick: some request was sent (and answered) at or after this
                    sure = now - renew_every - 0.1
                with state.lock:
                    last = max(state.answered, default=0.0)
                if postmaster.poll() is None:
                    assert now - last < fence_after + step, f"running {now - last:.2f}s after the last lease"
                elif died is None:
                    died = now
                    # Fenced only once fence_after passed since a request a partner surely answered.
                    assert died - sure >= fence_after - 0.3, f"fenced {died - sure:.2f}s after a sure lease"
                    break
                time.sleep(0.05)
        print(f"seed {seed}: {'fenced' if died else 'ran throughout'}")
    finally:
        if guard.poll() is None:
            guard.terminate()
        guard.communicate(timeout=10)  # also once it ended on its own (it fenced): its stderr pipe is closed
        postmaster.kill()
        postmaster.wait()


def _stamp_offset(lease: dict[str, Any]) -> float:
    """How far the Lease's renewTime (the guard's wall clock when it renewed) is from this machine's clock."""
    stamp = datetime.strptime(lease["spec"]["renewTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return stamp.timestamp() - time.time()


def test_a_skewed_wall_clock_moves_nothing_the_guard_decides(world: tuple[World, dict[str, str]],
                                                             tmp_path: Path) -> None:
    """Its wall clock stepped 30 s ahead, then 30 s behind, while it runs (rolegen_lab.clock): the guard neither
    stalls nor fences while its partners answer, and, cut from both, fences within fence_after of the cut on its
    monotonic clock, as without a skew. The skew shows only in the Lease's renewTime, which nobody compares."""
    state, env = world
    offset = tmp_path / "guard.clock"
    env = {**env, **clock.skewable(offset)}
    postmaster = _postmaster(env)
    guard = _guard(env)
    for seconds in (30, -30):
        clock.set_skew(offset, seconds)
        time.sleep(2.5)  # two renewals on the stepped clock
        assert state.lease is not None and abs(_stamp_offset(state.lease) - seconds) < 2
        assert guard.poll() is None and not _stopped(postmaster)
    state.up.update(witness=False, standby=False)
    cut = time.monotonic()
    code, log = _ends_within(guard, 12)
    assert code == 1 and postmaster.wait(1) == -9, log
    assert time.monotonic() - cut < 4 + SLACK, log
    assert "decision=stall" in log and log.count("decision=fence") == 1


def test_the_stall_the_resume_and_the_fence_are_events_on_the_sites_config(
        world: tuple[World, dict[str, str]]) -> None:
    """People read `kubectl get events`: each of the leader guard's decisions that matters is one Event on the
    site's `<scope>-config`, the fence's written before its container ends."""
    state, env = world
    postmaster = _postmaster(env)
    guard = _guard(env)
    time.sleep(0.6)
    state.up.update(witness=False, standby=False)
    cut = time.monotonic()
    while not _stopped(postmaster) and time.monotonic() - cut < 4:  # stalled (not a fixed sleep: a round may
        time.sleep(0.02)  # fall just before the partner's return, and the fence, 4 s after the cut, win)
    state.up["standby"] = True
    while _stopped(postmaster) and time.monotonic() - cut < 4:
        time.sleep(0.02)
    state.up["standby"] = False
    code, log = _ends_within(guard, 10)
    assert code == 1 and postmaster.wait(1) == -9, log
    reasons = [e["reason"] for e in state.events]
    assert reasons[:3] == ["WitnessGuardStalled", "WitnessGuardResumed", "WitnessGuardStalled"], (reasons, log)
    assert reasons[-1] == "WitnessGuardFenced", reasons
    fenced = state.events[-1]
    assert fenced["type"] == "Warning" and "neither the witness nor the standby's guard answered" in fenced["message"]
    assert fenced["involvedObject"] == {"apiVersion": "v1", "kind": "ConfigMap", "name": "patroni-config",
                                        "namespace": "site"}


def test_a_refused_promotion_is_an_event(world: tuple[World, dict[str, str]]) -> None:
    state, env = world
    state.up.update(witness=False, standby=False)
    refused = subprocess.run([sys.executable, str(GUARD), "--pre-promote"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1
    assert [e["reason"] for e in state.events] == ["WitnessPromotionRefused"]
    assert "neither the witness nor the standby's guard answered" in state.events[0]["message"]


def test_a_renewal_by_the_same_site_between_the_read_and_the_write_is_read_again(
        world: tuple[World, dict[str, str]]) -> None:
    """Found by the bench (auto-guard-killed): golddr's standby guard kept the Lease it took renewed while its
    failover ran; once, that renewal landed between the read and the write of golddr's pre_promote, whose 409
    counted as no answer, and with the tunnel cut the promotion was refused. A Conflict is read again; only
    another holder at the read is a lost Lease."""
    state, env = world
    state.up["standby"] = False
    state.lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": "patroni-pair", "annotations": {}}, "spec": {"holderIdentity": "gold"}}
    state.renewed_between = 2
    promoted = subprocess.run([sys.executable, str(GUARD), "--pre-promote"], env=env, capture_output=True, text=True)
    assert promoted.returncode == 0 and "decision=allow-promotion witness=True" in promoted.stderr, promoted.stderr
    state.lease["spec"]["holderIdentity"] = "golddr"  # another holder at the read: lost, never retried into
    refused = subprocess.run([sys.executable, str(GUARD), "--pre-promote"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "held by golddr" in refused.stderr

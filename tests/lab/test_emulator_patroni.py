"""Real Patroni 4.1.5 (Kubernetes DCS, ConfigMaps) bootstraps a real PostgreSQL 18 primary against the
emulator; kubectl then shows the `initialize` annotation. Also covers the member runtime helper."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from emulator_http import CONTEXT, Http

from rolegen.errors import RolegenError
from rolegen.lab import runtime
from rolegen.lab.emulator import Emulator

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
SCOPE = "demo"
LABELS = {"application": "patroni"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- runtime helper ----------------------------------------------------------------------------------
def test_member_env_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "leak")
    monkeypatch.setenv("PGHOST", "elsewhere")
    monkeypatch.setenv("KUBECONFIG", "/parent/kubeconfig")
    rt = runtime.MemberRuntime(Path("/usr/bin/python3"), Path("/opt/pg/bin"), drop_privileges=False)
    env = rt.env("/home/member", KUBECONFIG="/lab/kubeconfig")
    assert not any(k.startswith("PG") for k in env)
    assert env["KUBECONFIG"] == "/lab/kubeconfig" and env["HOME"] == "/home/member"
    assert env["PATH"].startswith("/opt/pg/bin:")


def test_root_members_run_through_setpriv() -> None:
    rt = runtime.MemberRuntime(Path("/venv/bin/python"), Path("/pg/bin"), drop_privileges=True)
    cmd = rt.patroni_command("/lab/patroni.yml")
    assert cmd[1:4] == ["--reuid=65534", "--regid=65534", "--clear-groups"]
    assert cmd[4:] == ["/venv/bin/python", "-m", "patroni", "/lab/patroni.yml"]
    assert (rt.uid, rt.gid) == (65534, 65534)


def test_no_usable_interpreter_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_is_root", lambda: True)
    monkeypatch.setattr(runtime, "SYSTEM_PYTHONS", ("/nonexistent/python3",))
    with pytest.raises(RolegenError) as err:
        runtime.member_runtime()
    assert "no Python that uid 65534 can execute" in err.value.message
    assert err.value.hint and "unprivileged user" in err.value.hint


# -- real Patroni ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def member_runtime() -> runtime.MemberRuntime:
    try:
        return runtime.member_runtime()
    except runtime.LabRuntimeError as e:  # e.g. no network to build the member venv
        pytest.skip(f"no lab runtime: {e.message}")


@pytest.fixture
def member_dir(member_runtime: runtime.MemberRuntime) -> Iterator[Path]:
    path = member_runtime.workdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _patroni_config(rt: runtime.MemberRuntime, work: Path, name: str, endpoints: bool = False) -> dict[str, Any]:
    rest, pg = _free_port(), _free_port()
    run = rt.data_dir(work, "run")
    return {
        "scope": SCOPE, "name": name,
        "restapi": {"listen": f"127.0.0.1:{rest}", "connect_address": f"127.0.0.1:{rest}"},
        "kubernetes": {"context": CONTEXT, "namespace": "default", "labels": LABELS,
                       "use_endpoints": endpoints, "pod_ip": "127.0.0.1"},
        "bootstrap": {"dcs": {"ttl": 10, "loop_wait": 2, "retry_timeout": 5},
                      "initdb": [{"encoding": "UTF8"}, "data-checksums"]},
        "postgresql": {
            "listen": f"127.0.0.1:{pg}", "connect_address": f"127.0.0.1:{pg}",
            "data_dir": str(rt.data_dir(work)), "bin_dir": str(rt.bin_dir), "pgpass": str(run / "pgpass"),
            "authentication": {"superuser": {"username": "postgres", "password": "lab-su"},
                               "replication": {"username": "replicator", "password": "lab-rep"}},
            "parameters": {"unix_socket_directories": str(run), "shared_buffers": "16MB"},
        },
    }


def _start_member(rt: runtime.MemberRuntime, api: Http, kubeconfig: Path, base: Path,
                  name: str, endpoints: bool = False) -> runtime.MemberProcess:
    """Create the member's Pod (Patroni patches its own Pod, so it must exist first), then start it."""
    pod = {"metadata": {"name": name, "labels": {**LABELS, "cluster-name": SCOPE}},
           "spec": {"containers": [{"name": "patroni", "image": "patroni"}]}}
    assert api("POST", "/api/v1/namespaces/default/pods", pod).status == 201
    home = base / name
    home.mkdir(mode=0o755)
    config = home / "patroni.yml"
    config.write_text(yaml.safe_dump(_patroni_config(rt, home, name, endpoints)))
    config.chmod(0o644)
    return runtime.spawn(rt, rt.patroni_command(config), rt.env(home / "run", KUBECONFIG=str(kubeconfig)),
                         home / "patroni.log", home)


def _wait_for(what: str, check: Callable[[], bool], member: runtime.MemberProcess, log: Path,
              timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and member.process.poll() is None:
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"{what} did not happen:\n{log.read_text()[-3000:]}")


def _pod(api: Http, name: str) -> tuple[str | None, dict[str, Any]]:
    meta = api("GET", f"/api/v1/namespaces/default/pods/{name}").body["metadata"]
    return meta["labels"].get("role"), json.loads((meta.get("annotations") or {}).get("status", "{}"))


def _annotations(api: Http, name: str) -> dict[str, str]:
    got = api("GET", f"/api/v1/namespaces/default/configmaps/{name}")
    return (got.body["metadata"].get("annotations") or {}) if got.status == 200 else {}


def _no_leftovers(directory: Path) -> None:
    leftovers = subprocess.run(["pgrep", "-f", str(directory)], capture_output=True, text=True).stdout
    assert leftovers.strip() == ""


@pytest.mark.lab
def test_patroni_bootstraps_a_primary(emulator: Emulator, api: Http, kubectl: Kubectl,
                                      member_runtime: runtime.MemberRuntime, member_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "must-not-reach-the-member")  # would break a member that inherited it
    rt, name = member_runtime, f"{SCOPE}-0"
    kubeconfig = emulator.write_kubeconfig(member_dir / "kubeconfig")
    member = _start_member(rt, api, kubeconfig, member_dir, name)
    log = member_dir / name / "patroni.log"
    try:
        # `initialize` is "" while bootstrapping and the system identifier afterwards.
        _wait_for("bootstrap", lambda: bool(_annotations(api, f"{SCOPE}-config").get("initialize")), member, log)
        shown = json.loads(kubectl("get", "configmap", f"{SCOPE}-config", "-o", "json").stdout)
        assert shown["metadata"]["annotations"]["initialize"].isdigit()
        assert json.loads(shown["metadata"]["annotations"]["config"])["loop_wait"] == 2
        _wait_for("primary role label", lambda: _pod(api, name)[0] == "primary", member, log)
        assert _pod(api, name)[1]["role"] == "primary"
        assert _annotations(api, f"{SCOPE}-leader")["leader"] == name
        assert os.stat(member_dir / name / "data").st_uid == rt.uid
    finally:
        member.stop()
    assert member.process.returncode is not None
    _no_leftovers(member_dir)


@pytest.mark.lab
def test_patroni_replica_streams_and_takes_over_after_a_clean_stop(
        emulator: Emulator, api: Http, member_runtime: runtime.MemberRuntime, member_dir: Path) -> None:
    rt = member_runtime
    kubeconfig = emulator.write_kubeconfig(member_dir / "kubeconfig")
    first = _start_member(rt, api, kubeconfig, member_dir, f"{SCOPE}-0")
    second: runtime.MemberProcess | None = None
    try:
        _wait_for("primary", lambda: _pod(api, f"{SCOPE}-0")[0] == "primary", first,
                  member_dir / f"{SCOPE}-0" / "patroni.log")
        second = _start_member(rt, api, kubeconfig, member_dir, f"{SCOPE}-1")
        log = member_dir / f"{SCOPE}-1" / "patroni.log"
        _wait_for("streaming replica", lambda: _pod(api, f"{SCOPE}-1")[1].get("replication_state") == "streaming",
                  second, log)
        assert _pod(api, f"{SCOPE}-1")[0] == "replica"
        first.stop()  # a clean stop releases the leader lock; the replica wins the race
        _wait_for("takeover", lambda: _annotations(api, f"{SCOPE}-leader").get("leader") == f"{SCOPE}-1",
                  second, log, timeout=40)
        _wait_for("new primary", lambda: _pod(api, f"{SCOPE}-1")[0] == "primary", second, log)
        assert int(_annotations(api, f"{SCOPE}-leader")["transitions"]) >= 1
    finally:
        first.stop()
        if second is not None:
            second.stop()
    _no_leftovers(member_dir)


@pytest.mark.lab
def test_patroni_with_endpoints_dcs(emulator: Emulator, api: Http, member_runtime: runtime.MemberRuntime,
                                    member_dir: Path) -> None:
    """`use_endpoints: true`: the leader lives in the `<scope>` Endpoints, with the leader's address."""
    kubeconfig = emulator.write_kubeconfig(member_dir / "kubeconfig")
    member = _start_member(member_runtime, api, kubeconfig, member_dir, f"{SCOPE}-0", endpoints=True)
    ep = f"/api/v1/namespaces/default/endpoints/{SCOPE}"

    def leader_endpoint() -> bool:
        got = api("GET", ep)
        return got.status == 200 and (got.body["metadata"].get("annotations") or {}).get("leader") == f"{SCOPE}-0"

    try:
        _wait_for("leader endpoints", leader_endpoint, member, member_dir / f"{SCOPE}-0" / "patroni.log")
        subsets = api("GET", ep).body.get("subsets") or []
        assert subsets and subsets[0]["addresses"][0]["ip"] == "127.0.0.1"
        assert api("GET", f"/api/v1/namespaces/default/services/{SCOPE}-config").status == 200
        config_ep = f"/api/v1/namespaces/default/endpoints/{SCOPE}-config"
        _wait_for("initialize", lambda: bool((api("GET", config_ep).body["metadata"].get("annotations") or {})
                                             .get("initialize")), member, member_dir / f"{SCOPE}-0" / "patroni.log")
    finally:
        member.stop()
    _no_leftovers(member_dir)

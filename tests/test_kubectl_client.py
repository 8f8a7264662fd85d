"""Cluster client selection (kubectl or OpenShift's oc) and the rule that rolegen passes only what both share.

No `oc` binary is available to the tests: fake executables on PATH record their argv and print canned JSON."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster import api_session, kubectl, kubectl_client
from rolegen.errors import RolegenError

REPO = Path(__file__).resolve().parent.parent

# The subset of kubectl that `oc` (built on the same kubectl code, `oc <verb>` = `kubectl <verb>`) shares with the
# same flags and output. Every argv rolegen passes must fit it.
GLOBAL_FLAGS = {"--kubeconfig", "--context", "--cache-dir", "--namespace", "--request-timeout"}
ALLOWED = {
    "get": {"-o", "-l"},
    "patch": {"--type", "-p", "-o"},
    "annotate": {"--overwrite", "--resource-version"},
    "create": {"-f", "-o"},
    "scale": {"--replicas"},
    "delete": {"--ignore-not-found", "--wait"},
    "version": {"--client", "-o"},
    "proxy": {"--unix-socket"},  # a role verb's API proxy (rolegen.cluster.api_session)
}

FAKE = """#!/bin/sh
for arg in "$0" "$@"; do printf '%s\\n' "$arg"; done >> "{log}"; echo @@ >> "{log}"
case "$*" in
  *"version --client"*) printf '%s' '{version}' ;;
  *" get "*) printf '%s' '{{"kind": "List", "items": []}}' ;;
esac
"""
OC_VERSION = {"releaseClientVersion": "4.16.3", "clientVersion": {"gitVersion": "v0.0.0-master+$Format:%H$"}}
KUBECTL_VERSION = {"clientVersion": {"gitVersion": "v1.37.1"}}


def _fake(bin_dir: Path, name: str, log: Path, version: dict[str, object]) -> Path:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(FAKE.format(log=log, version=json.dumps(version)))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """PATH holds only a fake `oc`; no kubectl beside the interpreter; no client variables set. The fakes tell no
    server version, so every site keeps the default client (tests/test_kubectl_skew.py chooses by version)."""
    log = tmp_path / "argv.log"
    _fake(tmp_path / "bin", "oc", log, OC_VERSION)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(kubectl_client.sys, "executable", str(tmp_path / "nopython" / "python"))
    monkeypatch.delenv("ROLEGEN_KUBE_CLIENT", raising=False)
    kubectl.use_client(None)
    kubectl_client.forget()
    yield log
    kubectl_client.forget()


def _argvs(log: Path) -> list[list[str]]:
    return [call.strip("\n").split("\n")[1:] for call in log.read_text().split("@@\n") if call.strip()]


def test_oc_on_path_is_used_when_there_is_no_kubectl(fakes: Path, tmp_path: Path) -> None:
    assert kubectl.kubectl_binary() == str(tmp_path / "bin" / "oc")


def test_kubectl_on_path_wins_over_oc(fakes: Path, tmp_path: Path) -> None:
    binary = _fake(tmp_path / "bin", "kubectl", fakes, KUBECTL_VERSION)
    assert kubectl.kubectl_binary() == str(binary)


def test_environment_then_option_override(fakes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = _fake(tmp_path / "other", "kubectl", fakes, KUBECTL_VERSION)
    monkeypatch.setenv("ROLEGEN_KUBE_CLIENT", str(other))
    assert kubectl.kubectl_binary() == str(other)
    monkeypatch.setenv("ROLEGEN_KUBE_CLIENT", "oc")  # a name is looked up on PATH
    assert kubectl.kubectl_binary() == str(tmp_path / "bin" / "oc")
    kubectl.use_client(str(other))
    try:
        assert kubectl.kubectl_binary() == str(other)
    finally:
        kubectl.use_client(None)


def test_no_client_names_both(fakes: Path, tmp_path: Path) -> None:
    (tmp_path / "bin" / "oc").unlink()
    with pytest.raises(RolegenError) as err:
        kubectl.kubectl_binary()
    assert "kubectl" in err.value.message and "oc" in err.value.message
    assert "--kube-client" in (err.value.hint or "")


def test_explicit_client_that_does_not_exist(fakes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLEGEN_KUBE_CLIENT", "/nowhere/oc")
    with pytest.raises(RolegenError, match=r"'/nowhere/oc' \(\$ROLEGEN_KUBE_CLIENT\) is not an executable"):
        kubectl.kubectl_binary()


def test_status_names_the_client_and_its_version(fakes: Path, tmp_path: Path) -> None:
    env_dir = REPO / "environments"
    result = CliRunner().invoke(app, ["status", "--kube-client", "oc", "--dir", str(env_dir), "-f", "json"])
    data = json.loads(result.stdout)
    assert data["client"] == {"path": str(tmp_path / "bin" / "oc"), "version": "4.16.3", "problem": None}
    pretty = CliRunner().invoke(app, ["status", "--kube-client", "oc", "--dir", str(env_dir)])
    assert f"client: oc 4.16.3 ({tmp_path / 'bin' / 'oc'})" in pretty.stdout.splitlines()
    assert pretty.exit_code == 1  # unchanged verdict: the fake sites have no members
    kubectl.use_client(None)


def test_every_argv_rolegen_passes_is_in_the_shared_subset(fakes: Path, tmp_path: Path) -> None:
    cluster = kubectl.Cluster("ns", "ctx", tmp_path / "kubeconfig", tmp_path / "cache")
    cluster.get("configmap", "patroni-config")
    cluster.list("configmaps,pods", "application=patroni,cluster-name=patroni")
    cluster.merge_patch("configmap", "patroni-config", {"metadata": {"annotations": {"a": "b"}}}, "42")
    cluster.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    cluster.scale("statefulset", "patroni", 0)
    cluster.delete("pvc", "pgdata-patroni-0")
    kubectl.client_info()
    kubectl_client.client_version(str(tmp_path / "bin" / "oc"))  # how a candidate on PATH is asked its version
    with api_session.opened([cluster.proxy_site()]):  # a role verb's proxy (this fake exits: calls stay runs)
        pass
    argvs = _argvs(fakes)
    assert len(argvs) == 10  # the site's one version probe, the six calls, two `version --client`, the proxy
    for argv in argvs:
        flags = {a.split("=")[0] for a in argv if a.startswith("-") and a != "-"} - GLOBAL_FLAGS
        verbs = [a for a in argv if a in ALLOWED]
        assert verbs, argv
        assert flags <= ALLOWED[verbs[0]], argv


def test_only_kube_py_runs_the_client() -> None:
    """All cluster calls go through kubectl.Cluster's methods above (kubectl_client only asks versions), so the
    allow-list test covers them all."""
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "generator/rolegen").rglob("*.py")
        if "lab" not in path.parts and path.name != "kubectl.py"
        and re.search(r"\.kubectl\(|kubectl_binary\(", path.read_text())
    ]
    assert offenders == []


def test_errors_name_the_client_that_failed(fakes: Path, tmp_path: Path) -> None:
    failing = tmp_path / "bin" / "oc"
    failing.write_text("#!/bin/sh\necho 'error: the server could not find the requested resource' >&2\nexit 1\n")
    with pytest.raises(RolegenError) as err:
        kubectl.Cluster("ns", "ctx").list("transportserverclaims")
    assert err.value.message.startswith("oc get transportserverclaims -o failed on context ctx: error: the server")


def test_status_without_any_client_says_so_in_its_client_line(fakes: Path, tmp_path: Path) -> None:
    (tmp_path / "bin" / "oc").unlink()
    result = CliRunner().invoke(app, ["status", "--dir", str(REPO / "environments")])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        "client: none (no cluster client found: neither kubectl nor oc is beside this Python or on PATH)")


def test_the_client_runs_without_garbage_collection_below_256_mib_unless_the_user_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "env.log"
    client = tmp_path / "kubectl"
    client.write_text(f'#!/bin/sh\necho "GOGC=$GOGC GOMEMLIMIT=$GOMEMLIMIT" >> "{log}"\nprintf "{{}}"\n')
    client.chmod(0o755)
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    kubectl.use_client(str(client))
    try:
        site = kubectl.Cluster("ns", "gold")
        site.kubectl("get", "pods", "-o", "json")
        monkeypatch.setenv("GOGC", "100")  # the user's tuning wins
        site.kubectl("get", "pods", "-o", "json")
    finally:
        kubectl.use_client(None)
    # The first run is the site's version probe.
    assert log.read_text().splitlines() == ["GOGC=off GOMEMLIMIT=256MiB"] * 2 + ["GOGC=100 GOMEMLIMIT=256MiB"]

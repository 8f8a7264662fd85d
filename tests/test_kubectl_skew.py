"""Which client runs against a site, by version: the user's kubectl or oc when within one minor of the site's API
server, else the kubectl installed with rolegen; one warning when the client used is beyond that.

The clients are small scripts (real processes): each answers `version --client` with its own version, `version`
with its own and the version of the API server of the context it was given, and `get` with an empty list; every
run is logged. They use shell built-ins only: PATH holds nothing but the clients a test puts there."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster import kubectl, kubectl_client
from rolegen.cluster.kubectl import Cluster, ClusterUnreachable

REPO = Path(__file__).resolve().parent.parent

CLIENT = r"""#!/bin/sh
echo "$0 $*" >> "ROOT/runs.log"
context= previous=
for arg in "$@"; do [ "$previous" = --context ] && context=$arg; previous=$arg; done
if [ -f "ROOT/down-$context" ]; then
  echo "Unable to connect to the server: dial tcp 10.0.0.1:6443: connect: connection refused" >&2; exit 1
fi
case "$*" in
  *"version --client"*) printf '%s' 'CLIENT}' ;;
  *" version "*) read -r server < "ROOT/server-$context"
    printf '%s, "serverVersion": {"gitVersion": "%s"}}' 'CLIENT' "$server" ;;
  *" get "*) printf '%s' '{"kind": "List", "items": []}' ;;
esac
"""


def kubectl_version(version: str) -> dict[str, object]:
    return {"clientVersion": {"gitVersion": version}}


def oc_version(release: str) -> dict[str, object]:
    return {"releaseClientVersion": release, "clientVersion": {"gitVersion": "v0.0.0-master+$Format:%H$"}}


class Fakes:
    def __init__(self, root: Path) -> None:
        self.root = root

    def client(self, where: str, name: str, version: dict[str, object]) -> Path:
        path = self.root / where / name
        path.parent.mkdir(exist_ok=True)
        script = CLIENT.replace("ROOT", str(self.root)).replace("CLIENT", json.dumps(version)[:-1])
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return path

    def server(self, context: str, version: str) -> None:
        (self.root / f"server-{context}").write_text(version + "\n")

    def down(self, context: str) -> None:
        (self.root / f"down-{context}").touch()

    def runs(self) -> list[tuple[str, str]]:
        """(client path, what it was asked: version, version --client or get) of each run."""
        log = self.root / "runs.log"
        lines = log.read_text().splitlines() if log.exists() else []
        asked = ("version", "--client", "get")
        return [(line.split()[0], " ".join(a for a in line.split()[1:] if a in asked)) for line in lines]


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    """rolegen's bundled kubectl 1.37 beside a fake interpreter; PATH holds only what a test puts in `path/`."""
    made = Fakes(tmp_path)
    made.client("venv", "kubectl", kubectl_version("v1.37.1"))
    (tmp_path / "path").mkdir()
    monkeypatch.setattr(kubectl_client.sys, "executable", str(tmp_path / "venv" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    monkeypatch.delenv("ROLEGEN_KUBE_CLIENT", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    kubectl.use_client(None)
    kubectl_client.forget()
    yield made
    kubectl.use_client(None)
    kubectl_client.on_warning(None)
    kubectl_client.forget()


def warnings_to(found: list[str]) -> None:
    kubectl_client.on_warning(found.append)


def test_the_users_kubectl_within_one_minor_is_preferred_to_the_bundled_one(fakes: Fakes) -> None:
    mine = str(fakes.client("path", "kubectl", kubectl_version("v1.33.2")))
    bundled = str(fakes.root / "venv" / "kubectl")
    fakes.server("gold", "v1.34.4")
    found: list[str] = []
    warnings_to(found)
    site = Cluster("ns", "gold")
    site.list("pods")
    site.list("pods")
    assert site.client() == kubectl_client.Choice(mine, "v1.33.2", "v1.34.4")
    assert found == []
    # One probe (through the bundled kubectl) and one question to the candidate, then nothing but the calls.
    assert fakes.runs() == [(bundled, "version"), (mine, "version --client"), (mine, "get"), (mine, "get")]


def test_oc_is_matched_by_its_openshift_release(fakes: Fakes) -> None:
    fakes.client("path", "kubectl", kubectl_version("v1.33.2"))  # far from OpenShift 4.16's Kubernetes 1.29
    oc = fakes.client("path", "oc", oc_version("4.16.3"))
    fakes.server("ocp", "v1.29.6+aba1e8d")
    assert Cluster("ns", "ocp").client() == kubectl_client.Choice(str(oc), "4.16.3", "v1.29.6+aba1e8d")


def test_when_kubectl_and_oc_both_fit_kubectl_runs(fakes: Fakes) -> None:
    kubectl_on_path = fakes.client("path", "kubectl", kubectl_version("v1.33.2"))
    fakes.client("path", "oc", oc_version("4.19.1"))  # Kubernetes 1.32
    fakes.server("ocp", "v1.32.5")
    assert Cluster("ns", "ocp").client().path == str(kubectl_on_path)


def test_each_site_gets_its_own_client_from_one_probe(fakes: Fakes) -> None:
    fakes.client("path", "kubectl", kubectl_version("v1.33.2"))
    fakes.client("path", "oc", oc_version("4.16.3"))
    fakes.server("gold", "v1.34.4")
    fakes.server("golddr", "v1.29.6")
    for _ in range(3):
        for context in ("gold", "golddr"):
            Cluster("ns", context).get("configmap", "patroni-config")
    assert [asked for _, asked in fakes.runs()].count("version") == 2
    assert {Path(path).name for path, asked in fakes.runs() if asked == "get"} == {"kubectl", "oc"}
    assert Path(Cluster("ns", "gold").client().path).name == "kubectl"
    assert Path(Cluster("ns", "golddr").client().path).name == "oc"


def test_with_nothing_within_one_minor_the_bundled_kubectl_runs_and_status_warns_once(
    fakes: Fakes, tmp_path: Path
) -> None:
    fakes.client("path", "kubectl", kubectl_version("v1.32.4"))
    fakes.server("gold", "v1.27.16+03a907c")  # OpenShift 4.14
    fakes.server("golddr", "v1.27.16+03a907c")
    result = CliRunner().invoke(app, ["status", "--dir", str(REPO / "environments")])
    bundled = tmp_path / "venv" / "kubectl"
    assert f"client: kubectl v1.37.1 ({bundled})" in result.stdout.splitlines()
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1  # both sites are skewed: one warning per process
    # The sites are read at the same time: the warning names whichever was probed first.
    assert warnings[0] in {
        f"warning: kubectl v1.37.1 ({bundled}) is 10 minor versions newer than the API server of context {site} "
        "(v1.27.16+03a907c), beyond kubectl's skew policy of one; put a kubectl or oc within one minor of it on "
        "PATH, or pass --kube-client" for site in ("gold", "golddr")}


def test_an_explicit_client_runs_even_when_skewed_and_is_warned_about(fakes: Fakes) -> None:
    old = fakes.client("elsewhere", "kubectl", kubectl_version("v1.31.0"))
    fakes.client("path", "kubectl", kubectl_version("v1.34.1"))  # would fit, but the user chose
    fakes.server("gold", "v1.34.4")
    found: list[str] = []
    warnings_to(found)
    kubectl.use_client(str(old))
    assert Cluster("ns", "gold").client().path == str(old)
    assert found == [f"kubectl v1.31.0 ({old}) is 3 minor versions older than the API server of context gold "
                     "(v1.34.4), beyond kubectl's skew policy of one; put a kubectl or oc within one minor of it on "
                     "PATH, or pass --kube-client"]


def test_below_the_cli_nothing_is_printed(fakes: Fakes, capsys: pytest.CaptureFixture[str]) -> None:
    fakes.server("gold", "v1.34.4")  # the bundled 1.37 is beyond the policy
    Cluster("ns", "gold").list("pods")
    assert capsys.readouterr() == ("", "")


def test_an_unreachable_site_is_probed_once_and_fails_as_any_call(fakes: Fakes) -> None:
    fakes.client("path", "kubectl", kubectl_version("v1.34.1"))
    fakes.down("gold")
    site = Cluster("ns", "gold")
    for _ in range(2):
        with pytest.raises(ClusterUnreachable, match=r"^cannot reach the cluster of context gold: Unable to connect"):
            site.list("pods")
    bundled = str(fakes.root / "venv" / "kubectl")
    assert fakes.runs() == [(bundled, "version"), (bundled, "get")]
    assert site.client().path == str(fakes.root / "venv" / "kubectl")  # the default: nothing was measured


def test_versions_are_remembered_on_disk_across_runs_within_the_ttl(fakes: Fakes, monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    """A script running rolegen many times probes a site once per CACHE_TTL; a changed binary is asked again."""
    fakes.client("path", "kubectl", kubectl_version("v1.34.1"))
    fakes.server("gold", "v1.34.4")
    cache = fakes.root / "cache"
    Cluster("ns", "gold", cache_dir=cache).list("pods")
    kubectl_client.forget()  # a second process
    Cluster("ns", "gold", cache_dir=cache).list("pods")
    asked = [asked for _, asked in fakes.runs()]
    assert asked.count("version") == 1 and asked.count("version --client") == 1 and asked.count("get") == 2
    kubectl_client.forget()
    later = kubectl_client.time.time() + kubectl_client.CACHE_TTL + 1
    monkeypatch.setattr(kubectl_client.time, "time", lambda: later)
    fakes.client("path", "kubectl", kubectl_version("v1.35.0"))  # upgraded: another binary
    assert Cluster("ns", "gold", cache_dir=cache).client().version == "v1.35.0"
    asked = [asked for _, asked in fakes.runs()]
    assert asked.count("version") == 2 and asked.count("version --client") == 2

"""Where the lab's Kubernetes binaries come from: --k8s-bin, then $KUBEBUILDER_ASSETS, then the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolegen.errors import RolegenError
from rolegen_lab.controlplane import k8sbin


def fake_bins(directory: Path, names: tuple[str, ...] = (*k8sbin.BINARIES, k8sbin.CLIENT)) -> Path:
    directory.mkdir(parents=True)
    for name in names:
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)
    return directory


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    return tmp_path / "cache" / "rolegen" / f"k8s-{k8sbin.K8S_VERSION}"


def test_explicit_dir_wins_over_assets_and_cache(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_bins(cache)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(fake_bins(tmp_path / "assets")))
    explicit = fake_bins(tmp_path / "mine")
    assert k8sbin.find(explicit) == k8sbin.K8sBinaries(explicit, "--k8s-bin")
    assert k8sbin.find().source == "$KUBEBUILDER_ASSETS"
    monkeypatch.delenv("KUBEBUILDER_ASSETS")
    assert k8sbin.find() == k8sbin.K8sBinaries(cache, "the build cache")


def test_nothing_found_names_the_build_command() -> None:
    with pytest.raises(RolegenError) as exc:
        k8sbin.find()
    assert "does not exist" in exc.value.message
    assert exc.value.hint is not None and "rolegen lab build" in exc.value.hint


def test_envtest_assets_without_controller_manager_fail_instead_of_falling_back(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_bins(cache)  # a complete cache must not be used silently instead
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(fake_bins(tmp_path / "assets", ("kube-apiserver", "etcd"))))
    with pytest.raises(RolegenError) as exc:
        k8sbin.find()
    assert exc.value.message.endswith("lacks kube-controller-manager")
    assert exc.value.hint is not None and "dl.k8s.io" in exc.value.hint


def test_build_reuses_a_complete_cache_without_go(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_bins(cache)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(k8sbin, "GO_CANDIDATES", ())
    result = k8sbin.build()
    assert (result.directory, result.built) == (cache, False)
    with pytest.raises(RolegenError) as exc:
        k8sbin.build(force=True)
    assert "needs Go" in exc.value.message


def test_build_command_sets_the_version_reported_by_the_server() -> None:
    cmd = k8sbin.build_command("go", Path("/out"))
    ldflags = cmd[cmd.index("-ldflags") + 1]
    assert f"version.gitVersion={k8sbin.K8S_VERSION}" in ldflags and "version.gitMinor=34" in ldflags
    assert cmd[-4:] == ["k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
                        "./etcd", "k8s.io/kubernetes/cmd/kubectl"]


FAKE_GO = """#!/bin/sh
echo "$*" >> "{log}"
out= previous=
for arg in "$@"; do [ "$previous" = -o ] && out=$arg; previous=$arg; done
mkdir -p "$out"
for arg in "$@"; do
  case "$arg" in
    k8s.io/*|./etcd) printf '#!/bin/sh\\necho %s\\n' "$arg" > "$out${{arg##*/}}"; chmod +x "$out${{arg##*/}}" ;;
  esac
done
"""


def test_a_cache_without_kubectl_gets_only_kubectl(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache built before the lab built kubectl: its control plane binaries stay, kubectl is added."""
    fake_bins(cache, k8sbin.BINARIES)
    go = tmp_path / "go"
    go.write_text(FAKE_GO.format(log=tmp_path / "go.log"))
    go.chmod(0o755)
    monkeypatch.setattr(k8sbin, "go_binary", lambda: str(go))
    result = k8sbin.build()
    assert (result.directory, result.built) == (cache, True)
    assert (tmp_path / "go.log").read_text().split()[-1:] == ["k8s.io/kubernetes/cmd/kubectl"]
    assert (cache / "kube-apiserver").read_text() == "#!/bin/sh\n"  # kept, not rebuilt
    assert "k8s.io/kubernetes/cmd/kubectl" in (cache / "kubectl").read_text()
    assert k8sbin.build().built is False


def test_lab_up_without_binaries_fails_before_starting_anything(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rolegen.cli import app

    root = tmp_path / "lab"
    environments = Path(__file__).resolve().parent.parent / "environments"
    result = CliRunner().invoke(app, ["lab", "up", "--dir", str(environments), "--root", str(root)])
    assert result.exit_code == 1
    assert "error: no Kubernetes binaries" in result.stderr and "rolegen lab build" in result.stderr
    assert not root.exists()

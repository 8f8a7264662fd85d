"""The lab's Kubernetes binaries: kube-apiserver, kube-controller-manager and etcd at one pinned release, and
kubectl of the same release (a client within kubectl's version skew policy, which the kubectl rolegen bundles
may not be: the lab's tests put this one on PATH, where rolegen prefers it; see rolegen.cluster.kubectl_client).

Owns where they come from. `build()` compiles them from the committed Go recipe (`rolegen_lab/controlplane/k8s/`: a
wrapper go.mod pinning k8s.io/kubernetes and every staging module, go.sum, and an etcdmain wrapper) into
`~/.cache/rolegen/k8s-<version>/`, atomically (a temporary directory renamed into place; a cache that lacks only
some binaries, e.g. kubectl in one built before the lab had it, gets just those, each renamed in). `find()` looks,
in order, at an explicit directory (`--k8s-bin`), `$KUBEBUILDER_ASSETS` (envtest's convention), the
cache; there is no silent fallback: anything missing is an error naming `rolegen lab build` (kubectl is not
required to run the lab).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rolegen.errors import RolegenError

K8S_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.4"
BINARIES = ("kube-apiserver", "kube-controller-manager", "etcd")  # what the lab needs to run
CLIENT = "kubectl"
_PACKAGES = {"kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver", "kube-controller-manager":
             "k8s.io/kubernetes/cmd/kube-controller-manager", "kubectl": "k8s.io/kubernetes/cmd/kubectl",
             "etcd": "./etcd"}
RECIPE = Path(__file__).resolve().parent / "k8s"
GO_CANDIDATES = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")
_BUILD_HINT = "build them once with `rolegen lab build` (needs Go), or pass --k8s-bin DIR / set KUBEBUILDER_ASSETS"


@dataclass(frozen=True)
class K8sBinaries:
    """A directory holding the three binaries, and where it was found (for messages)."""

    directory: Path
    source: str

    def path(self, name: str) -> Path:
        return self.directory / name


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rolegen"


def cache_dir(version: str = K8S_VERSION) -> Path:
    return cache_root() / f"k8s-{version}"


def _missing(directory: Path, names: tuple[str, ...] = BINARIES) -> list[str]:
    return [b for b in names if not os.access(directory / b, os.X_OK)]


def find(explicit: Path | None = None, version: str = K8S_VERSION) -> K8sBinaries:
    """The binaries the lab runs: `explicit`, else $KUBEBUILDER_ASSETS, else the build cache."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if explicit is not None:
        candidate, source = explicit, "--k8s-bin"
    elif assets:
        candidate, source = Path(assets), "$KUBEBUILDER_ASSETS"
    else:
        candidate, source = cache_dir(version), "the build cache"
        if not candidate.is_dir():
            raise RolegenError(f"no Kubernetes binaries: {candidate} does not exist", hint=_BUILD_HINT)
    missing = _missing(candidate)
    if missing:
        hint = _BUILD_HINT
        if "kube-controller-manager" in missing and source == "$KUBEBUILDER_ASSETS":
            hint = ("setup-envtest ships no kube-controller-manager: add it to that directory (e.g. from "
                    f"https://dl.k8s.io/release/{version}/bin/linux/amd64/kube-controller-manager), or "
                    "unset KUBEBUILDER_ASSETS and run `rolegen lab build`")
        raise RolegenError(f"{source} ({candidate}) lacks {', '.join(missing)}", hint=hint)
    return K8sBinaries(candidate, source)


def go_binary() -> str:
    found = shutil.which("go") or next((g for g in GO_CANDIDATES if os.access(g, os.X_OK)), None)
    if found is None:
        raise RolegenError(
            "`rolegen lab build` needs Go (>= 1.24) on PATH",
            hint="install Go, or get the binaries without Go: setup-envtest (kube-apiserver, etcd) plus "
            "kube-controller-manager from dl.k8s.io, in one directory named by KUBEBUILDER_ASSETS",
        )
    return found


def build_command(go: str, out: Path, version: str = K8S_VERSION,
                  names: tuple[str, ...] = (*BINARIES, CLIENT)) -> list[str]:
    minor = version.lstrip("v").split(".")[1]
    ldflags = " ".join(
        [
            "-s -w",
            f"-X k8s.io/component-base/version.gitVersion={version}",
            "-X k8s.io/component-base/version.gitMajor=1",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
            "-X k8s.io/component-base/version.gitTreeState=clean",
        ]
    )
    return [go, "build", "-trimpath", "-ldflags", ldflags, "-o", f"{out}/", *(_PACKAGES[n] for n in names)]


@dataclass(frozen=True)
class BuildResult:
    directory: Path
    built: bool  # False: the cache already held them
    seconds: float


def build(force: bool = False, version: str = K8S_VERSION, recipe: Path = RECIPE) -> BuildResult:
    """Compile the pinned binaries into the cache (reused unless `force`; only the missing ones built)."""
    target = cache_dir(version)
    everything = (*BINARIES, CLIENT)
    names = everything if force or not target.is_dir() else tuple(_missing(target, everything))
    if not names:
        return BuildResult(target, False, 0.0)
    go = go_binary()
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f".k8s-{version}-", dir=target.parent) as tmp:
        out = Path(tmp) / "bin"
        env = {**os.environ, "CGO_ENABLED": "0"}
        proc = subprocess.run(build_command(go, out, version, names), cwd=recipe, env=env, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            first = next((line for line in proc.stderr.splitlines() if line.strip()), "(no output)")
            raise RolegenError(
                f"building Kubernetes {version} failed: {first}",
                hint=f"full log:\n{proc.stderr[-4000:]}",
            )
        if _missing(out, names):
            raise RolegenError(f"go build produced no {', '.join(_missing(out, names))} in {out}")
        if names != everything:  # the rest of the cache is kept: each new binary renamed in
            for name in names:
                (out / name).rename(target / name)
            return BuildResult(target, True, time.monotonic() - started)
        old = target.with_name(target.name + ".old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        out.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    return BuildResult(target, True, time.monotonic() - started)


def version_of(binaries: K8sBinaries) -> str:
    """What kube-apiserver says it is (`Kubernetes v1.34.4` -> `v1.34.4`)."""
    out = subprocess.run([str(binaries.path("kube-apiserver")), "--version"], capture_output=True, text=True,
                         timeout=30).stdout.strip()
    return out.split()[-1] if out else "unknown"

"""Against the lab's real API servers: rolegen runs the kubectl matched to them when it is on PATH, and otherwise its
bundled kubectl with one warning of the version skew, from the real `kubectl version -o json` of both."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster import kubectl_client
from rolegen_lab.controlplane import k8sbin
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab


def _status(lab: Lab) -> tuple[list[str], list[str]]:
    kubectl_client.forget()  # a choice and a warning of an earlier test in this process do not count
    result = CliRunner().invoke(app, ["status", "--dir", str(lab.env_dir), "--kubeconfig", str(lab.kubeconfig)])
    return result.stdout.splitlines(), result.stderr.splitlines()


def test_status_runs_the_labs_matched_kubectl_and_warns_of_nothing(lab: Lab) -> None:
    stdout, stderr = _status(lab)  # tests/lab/conftest.py puts the lab's binaries first on PATH
    assert stdout[0] == f"client: kubectl {k8sbin.K8S_VERSION} ({k8sbin.find().path('kubectl')})"
    assert [line for line in stderr if line.startswith("warning:")] == []


def test_without_a_matched_kubectl_the_bundled_one_runs_with_one_warning(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no kubectl or oc of the user's
    bundled = str(Path(sys.executable).parent / "kubectl")
    info = kubectl_client.client_version(bundled)
    minor = kubectl_client.client_minor(info)
    assert minor is not None
    skew = minor - int(k8sbin.K8S_VERSION.split(".")[1])
    assert skew > 1, "the bundled kubectl is within the policy for the lab now: this test shows nothing"
    stdout, stderr = _status(lab)
    assert stdout[0] == f"client: kubectl {kubectl_client.version_label(info)} ({bundled})"
    warnings = [line for line in stderr if line.startswith("warning:")]
    assert warnings in (
        [f"warning: kubectl {kubectl_client.version_label(info)} ({bundled}) is {skew} minor versions newer than "
         f"the API server of context {site} ({k8sbin.K8S_VERSION}), beyond kubectl's skew policy of one; put a "
         "kubectl or oc within one minor of it on PATH, or pass --kube-client"] for site in ("gold", "golddr"))

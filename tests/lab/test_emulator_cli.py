"""`python -m rolegen.lab.emulator`: serves, writes a kubeconfig with the chosen context, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from emulator_http import Http

from rolegen.lab.emulator import Emulator, EmulatorError, kubeconfig_dict


@pytest.mark.lab
def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc" / "config"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "rolegen.lab.emulator", "--port", "0",
                             "--kubeconfig", str(kubeconfig), "--context", "site-b"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() - started < 5  # interpreter start-up included
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["current-context"] == "site-b"
        url = config["clusters"][0]["cluster"]["server"]
        assert url == line.split()[1] and url.startswith("http://")
        assert Http(url)("GET", "/api/v1/namespaces/default").body["metadata"]["name"] == "default"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


@pytest.mark.lab
def test_cli_reports_a_busy_port() -> None:
    with Emulator(port=0) as busy:
        port = busy.url.rsplit(":", 1)[1]
        proc = subprocess.run([sys.executable, "-m", "rolegen.lab.emulator", "--port", port],
                              capture_output=True, text=True, timeout=20)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot listen on 127.0.0.1:") and "hint:" in proc.stderr


def test_python_api_kubeconfig_and_errors(tmp_path: Path) -> None:
    emu = Emulator(port=0, context="site-a")
    try:
        emu.url  # noqa: B018 - the property raises while stopped
    except EmulatorError as e:
        assert "not running" in e.message
    else:
        raise AssertionError("url of a stopped emulator")
    with emu:
        path = emu.write_kubeconfig(tmp_path / "config", namespace="lab")
        config = yaml.safe_load(path.read_text())
        assert config == kubeconfig_dict(emu.url, "site-a", "lab")
        assert config["contexts"][0]["context"]["namespace"] == "lab"
    emu.stop()  # idempotent

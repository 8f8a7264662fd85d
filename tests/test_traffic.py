"""Traffic hooks run for real (rolegen.procedures.traffic): the variables naming the sites and roles, the output in
the log, the directory they run in, a timeout that kills what the hook started, and failures that say why."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from tests.helpers import spec_data

from rolegen.offline.dependents import Hook
from rolegen.offline.spec import Spec
from rolegen.procedures.traffic import HookFailed, hook_env, run_hook

PY = sys.executable


def _hook(code: str, timeout: float = 10) -> Hook:
    return Hook("before_demote", (PY, "-c", code), timeout)


def test_a_hook_gets_the_sites_and_roles_and_its_output_goes_to_the_log(tmp_path: Path) -> None:
    gold = Spec.from_dict(spec_data("gold"))
    env = hook_env("switchover", "before_demote", gold, old="gold", new="golddr")
    lines: list[str] = []
    code = ("import os, sys; print(os.getcwd()); [print(f'{k}={v}', file=sys.stderr) for k, v in "
            "sorted(os.environ.items()) if k.startswith('ROLEGEN_')]")
    run_hook(_hook(code), env, tmp_path, lines.append)
    assert lines[0] == f"   | {tmp_path}"
    seen = dict(line[5:].split("=", 1) for line in lines[1:])  # ROLEGEN_KUBE_CLIENT etc. may be set around us
    assert {key: seen.get(key) for key in env} == {
        "ROLEGEN_VERB": "switchover", "ROLEGEN_PHASE": "before_demote", "ROLEGEN_SITE": "gold",
        "ROLEGEN_SITE_ROLE": "standby-leader", "ROLEGEN_CONTEXT": "gold", "ROLEGEN_NAMESPACE": "f088b1-prod",
        "ROLEGEN_OLD_LEADER": "gold", "ROLEGEN_NEW_LEADER": "golddr"}
    assert hook_env("failover", "after_promote", gold, old="golddr", new="gold")["ROLEGEN_SITE_ROLE"] == "leader"


def test_a_non_zero_exit_names_the_code_and_the_last_line(tmp_path: Path) -> None:
    with pytest.raises(HookFailed, match=r"before_demote hook exited 4 \(.* -c .*\): DNS API said no$"):
        run_hook(_hook("print('working'); print('DNS API said no'); raise SystemExit(4)"), {}, tmp_path,
                 lambda _: None)


def test_a_hook_that_runs_out_of_time_is_killed_with_what_it_started(tmp_path: Path) -> None:
    marker = tmp_path / "child-alive"
    child = f"import time, pathlib; time.sleep(1.5); pathlib.Path({str(marker)!r}).write_text('x')"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(30)"
    started = time.monotonic()
    with pytest.raises(HookFailed, match=r"before_demote hook ran out of its 0.5s .* it was killed"):
        run_hook(_hook(code, timeout=0.5), {}, tmp_path, lambda _: None)
    assert time.monotonic() - started < 5
    time.sleep(2)
    assert not marker.exists()  # the hook's child went with it


def test_a_hook_that_cannot_start_says_so(tmp_path: Path) -> None:
    with pytest.raises(HookFailed, match=r"before_demote hook could not start \(hooks/missing drain\): No such file"):
        run_hook(Hook("before_demote", ("hooks/missing", "drain")), {}, tmp_path, lambda _: None)

"""The lab's clock skew (rolegen_lab.clock): a process started on the shim reads its wall clock as far off as its
offset file says, changed while it runs, and nothing else moves: its monotonic clock, sleeps and timed waits stay
true, as under a real skew (libfaketime's waits fail under Python, which is why the lab has its own shim)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rolegen_lab import clock

CHILD = """
import datetime, json, sys, threading, time
def offsets():
    line = sys.stdin.readline()  # the parent's true time, sent when asked
    return {"time": time.time() - float(line), "datetime": datetime.datetime.now(datetime.timezone.utc).timestamp()
            - float(line)}
print(json.dumps(offsets()), flush=True)
start = time.monotonic()
time.sleep(0.2)
threading.Event().wait(0.2)
print(json.dumps({**offsets(), "waited": time.monotonic() - start}), flush=True)
"""


def test_a_skewed_process_reads_its_wall_clock_off_and_waits_as_long_as_ever(tmp_path: Path) -> None:
    offset = tmp_path / "guard.clock"
    env = {**os.environ, **clock.skewable(offset)}
    assert env["LD_PRELOAD"].endswith(".so") and clock.skew_of(offset) == 0
    clock.set_skew(offset, 30)
    with subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as child:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(f"{time.time()}\n")
        child.stdin.flush()
        first = json.loads(child.stdout.readline())
        assert abs(first["time"] - 30) < 1 and abs(first["datetime"] - 30) < 1
        assert clock.preloaded(child.pid)
        clock.set_skew(offset, -30)  # stepped back a minute while it runs
        assert clock.skew_of(offset) == -30
        child.stdin.write(f"{time.time()}\n")
        child.stdin.flush()
        second = json.loads(child.stdout.readline())
        assert abs(second["time"] + 30) < 1 and abs(second["datetime"] + 30) < 1
        assert 0.4 <= second["waited"] < 2  # a sleep and a timed wait, each as long as asked
    assert child.returncode == 0


def test_a_process_started_without_the_shim_is_not_preloaded() -> None:
    assert not clock.preloaded(os.getpid())

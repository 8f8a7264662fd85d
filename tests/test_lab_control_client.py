"""The lab's leftover processes (rolegen_lab.control.client.leftover_pids): every process naming the lab root, but
never the command that asks nor what launched it (`timeout 60 rolegen lab down --root X` names the root too: it
was killed by its own cleanup, and the lab's directory stayed behind)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOOKUP = ("import json, os, sys; from pathlib import Path; from rolegen_lab.control.client import leftover_pids; "
          "print(json.dumps([os.getppid(), leftover_pids(Path(sys.argv[1]))]))")


def test_a_process_naming_the_root_is_left_over_but_not_the_shell_that_runs_the_lookup(tmp_path: Path) -> None:
    root = tmp_path / "rolegen-lab-root"
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(root)])
    try:
        # The shell stays the lookup's parent (a command follows it) and names the root, as `timeout` does.
        shell = subprocess.run(["sh", "-c", f'"{sys.executable}" -c "$0" "$1"; : {root}', LOOKUP, str(root)],
                               capture_output=True, text=True, timeout=60, check=True)
    finally:
        stray.kill()
        stray.wait()
    parent, found = json.loads(shell.stdout)
    assert stray.pid in found
    assert parent not in found

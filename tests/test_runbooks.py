"""The documented runbooks (docs/role-changes.md, linked from the README) are the code's: `--dry-run` output for
the bundled environments, verbatim."""

from __future__ import annotations

import re
from pathlib import Path

from rolegen.procedures import failback, failover, reseed, switchover
from rolegen.procedures.base import load_pair

REPO = Path(__file__).resolve().parent.parent


def test_readme_runbooks_match_dry_run_output() -> None:
    env_dir = REPO / "environments"
    expected = [
        switchover.dry_run(load_pair(env_dir, "golddr")),
        failover.dry_run(load_pair(env_dir, "golddr")),
        failback.dry_run(load_pair(env_dir, "gold")),
        reseed.dry_run(load_pair(env_dir, "golddr")),
    ]
    doc = (REPO / "docs/role-changes.md").read_text()
    section = doc.split("\n## Runbooks (generated from the code)\n", 1)[1].split("\n## ", 1)[0]
    blocks = [b + "\n" for b in re.findall(r"```text\n(.*?)\n```", section, re.S)]
    assert blocks == expected

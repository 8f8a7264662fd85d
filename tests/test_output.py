from __future__ import annotations

import os
from pathlib import Path

from rolegen.offline.output import plan, write


def test_identical_files_are_never_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "generated/a/values.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("x: 1\n")
    os.utime(target, (1_000_000, 1_000_000))
    changes = plan(tmp_path, {"generated/a/values.yaml": "x: 1\n"}, ["generated/a"], "environments")
    assert [c.status for c in changes] == ["identical"]
    write(changes)
    assert target.stat().st_mtime == 1_000_000


def test_created_updated_and_orphans_removed(tmp_path: Path) -> None:
    (tmp_path / "generated/a/patches").mkdir(parents=True)
    (tmp_path / "generated/a/values.yaml").write_text("x: 1\n")
    (tmp_path / "generated/a/patches/old-config.yaml").write_text("{}\n")
    files = {"generated/a/values.yaml": "x: 2\n", "generated/a/patches/new-config.yaml": "y: 1\n"}
    changes = plan(tmp_path, files, ["generated/a"], "environments")
    assert {c.display: c.status for c in changes} == {
        "environments/generated/a/values.yaml": "updated",
        "environments/generated/a/patches/new-config.yaml": "created",
        "environments/generated/a/patches/old-config.yaml": "removed",
    }
    write(changes)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.yaml")) == [
        "generated/a/patches/new-config.yaml",
        "generated/a/values.yaml",
    ]
    assert (tmp_path / "generated/a/values.yaml").read_text() == "x: 2\n"


def test_diff_is_unified_with_repo_relative_names(tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text("a: 1\n")
    [change] = plan(tmp_path, {"v.yaml": "a: 2\n"}, [], "environments")
    assert change.diff() == "--- a/environments/v.yaml\n+++ b/environments/v.yaml\n@@ -1 +1 @@\n-a: 1\n+a: 2\n"

"""Clock skew for the lab's guards: a small preload library (clockshim.c, built with the machine's C compiler on
first use, cached under ~/.cache/rolegen) adds the seconds in a file to every wall-clock read of a process, so
`set_skew` steps a running process's wall clock as a bad time source would. Monotonic clocks, sleeps and timed
waits are untouched, as a real skew leaves them: the guards' rules read only monotonic clocks, and the skew
drill checks that they do."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from rolegen.errors import RolegenError

SOURCE = Path(__file__).with_name("clockshim.c")
CACHE = Path(os.environ.get("ROLEGEN_CACHE", Path.home() / ".cache" / "rolegen"))
OFFSET_ENV = "ROLEGEN_CLOCK_OFFSET_FILE"


def library() -> Path | None:
    """The built shim (built now if needed); None without a C compiler."""
    source = SOURCE.read_bytes()
    target = CACHE / f"clockshim-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    built = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SOURCE), "-ldl"],
                           capture_output=True, text=True, check=False)
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RolegenError(f"building the lab's clock shim failed: {built.stderr.strip()}")
    partial.replace(target)  # atomic: a concurrent build of the same source writes the same bytes
    return target


def preloaded(pid: int) -> bool:
    """The process `pid` runs with the shim loaded (its clock follows its offset file)."""
    try:
        return "/clockshim-" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def skewable(offset_file: Path) -> dict[str, str]:
    """The environment that runs a process on a clock `set_skew(offset_file, ...)` moves (no skew at first);
    empty without a C compiler (the process runs on the true clock and cannot be skewed)."""
    lib = library()
    if lib is None:
        return {}
    if not offset_file.exists():
        offset_file.write_text("0\n")
    return {"LD_PRELOAD": str(lib), OFFSET_ENV: str(offset_file)}


def set_skew(offset_file: Path, seconds: float) -> None:
    """Every process started with `skewable(offset_file)` now reads its wall clock `seconds` off (0: true)."""
    if library() is None:
        raise RolegenError("clock skew needs the lab's clock shim, and no C compiler (cc) is installed",
                           hint="apt-get install gcc")
    partial = offset_file.with_suffix(".tmp")
    partial.write_text(f"{seconds:g}\n")
    partial.replace(offset_file)  # a reader sees the old offset or the new one, never a half-written file


def skew_of(offset_file: Path) -> float:
    """The skew in force (0 when none was set)."""
    try:
        return float(offset_file.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0

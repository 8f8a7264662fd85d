"""One Patroni member of a lab site: the chart's static configuration and container environment, adapted
only for addresses and paths, run as a real Patroni + PostgreSQL process."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
import signal
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rolegen.errors import RolegenError
from rolegen_lab.network.ports import reserve
from rolegen_lab.node.runtime import MemberProcess, MemberRuntime, spawn

# Environment variables of the chart whose values are per-Pod addresses: the lab sets its own.
_ADDRESS_ENV = ("PATRONI_POSTGRESQL_CONNECT_ADDRESS", "PATRONI_RESTAPI_CONNECT_ADDRESS", "PATRONI_KUBERNETES_POD_IP")


def resolve_env(container_env: list[dict[str, Any]], pod: str, secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """What the kubelet would put in the container's environment: values, fieldRefs, secretKeyRefs, $(VAR)."""
    env: dict[str, str] = {}
    for item in container_env:
        name = item["name"]
        if "value" in item:
            env[name] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), str(item["value"]))
            continue
        source = item.get("valueFrom", {})
        if "fieldRef" in source:
            env[name] = {"metadata.name": pod, "status.podIP": "127.0.0.1"}.get(source["fieldRef"]["fieldPath"], "")
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = secrets.get(ref["name"], {}).get(ref["key"])
            if value is not None:
                env[name] = value
    return env


def remap_paths(value: Any, mounts: dict[str, Path]) -> Any:
    """`value` (config or environment) with every string under a mount path moved to where the lab put that
    volume: /etc/patroni-tls/ca.crt -> <pod dir>/volumes/tls/ca.crt."""
    if isinstance(value, dict):
        return {k: remap_paths(v, mounts) for k, v in value.items()}
    if isinstance(value, list):
        return [remap_paths(v, mounts) for v in value]
    if isinstance(value, str):
        for mount_path, directory in mounts.items():
            prefix = mount_path.rstrip("/") + "/"
            if value.startswith(prefix):
                return str(directory / value.removeprefix(prefix))
            if value == mount_path.rstrip("/"):  # the mount itself (a directory the process lists)
                return str(directory)
    return value


def secret_volume(directory: Path, source: dict[str, Any], secrets: dict[str, dict[str, str]],
                  runtime: MemberRuntime) -> Path | None:
    """A Secret volume as files in `directory`, written when the container starts (None: no such Secret).
    Owned by the member's user, mode 0600: the lab has no fsGroup, and PostgreSQL accepts a key file it owns
    only without group or other access."""
    data = secrets.get(source.get("secretName", ""))
    if data is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    runtime.own(directory)
    for item in source.get("items") or [{"key": k, "path": k} for k in data]:
        path = directory / item["path"]
        path.write_text(data.get(item["key"], ""))
        path.chmod(0o600)
        runtime.own(path)
    return directory


@dataclass
class LabMember:
    """Member `name` of a site; its directory survives restarts (the PVC) until `wipe()`."""

    name: str
    directory: Path
    runtime: MemberRuntime
    pg_port: int = field(default_factory=reserve)
    rest_port: int = field(default_factory=reserve)
    process: MemberProcess | None = None
    data_dir: Path | None = None  # PGDATA; default <directory>/data (the node agent puts it on the Pod's volume)
    # A Pod's deletion and the lab's own stop may stop a member at once: the second waits for the first, then
    # finds nothing to stop; the member reads as running until its stop has ended.
    _stopping: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _rest_auth: tuple[str | None, str | None] = field(default=(None, None), init=False, repr=False, compare=False)

    @property
    def data(self) -> Path:
        return self.data_dir or self.directory / "data"

    @property
    def dsn_host(self) -> tuple[str, int]:
        return ("127.0.0.1", self.pg_port)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.process.poll() is None

    def configure(self, static: dict[str, Any], files: dict[str, str], context: str | None) -> dict[str, Any]:
        """The chart's patroni.yml with lab addresses and paths (and nothing else) changed."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)
        self.runtime.own(self.directory)  # like a volume with fsGroup: Patroni may rename/remove data/ in it
        run = self.runtime.data_dir(self.directory, "run")
        config = copy.deepcopy(static)
        config["name"] = self.name
        config["restapi"] = {
            **config.get("restapi", {}),
            "listen": f"127.0.0.1:{self.rest_port}",
            "connect_address": f"127.0.0.1:{self.rest_port}",
        }
        pg = config.setdefault("postgresql", {})
        pg.update(
            listen=f"127.0.0.1:{self.pg_port}",
            connect_address=f"127.0.0.1:{self.pg_port}",
            data_dir=str(self.data),
            bin_dir=str(self.runtime.bin_dir),
            pgpass=str(run / "pgpass"),
        )
        pg.setdefault("parameters", {})["unix_socket_directories"] = str(run)
        if context is not None:  # None: Patroni runs in-cluster (ServiceAccount token, KUBERNETES_SERVICE_*)
            config.setdefault("kubernetes", {})["context"] = context
        # Files the chart mounts under /etc/patroni (post-bootstrap script) live in the member directory.
        for name, text in files.items():
            if name == "patroni.yml":
                continue
            path = self.directory / name
            path.write_text(text)
            path.chmod(0o755)
        if isinstance(pg.get("pre_promote"), str):  # a command line (the witness guard's gate): its paths too
            pg["pre_promote"] = " ".join(self._image_paths(pg["pre_promote"].split()))
        for name, command in (pg.get("callbacks") or {}).items():  # the DR slot's on_role_change: the same
            pg["callbacks"][name] = " ".join(self._image_paths(str(command).split()))
        bootstrap = config.get("bootstrap", {})
        if isinstance(bootstrap.get("post_bootstrap"), str):
            bootstrap["post_bootstrap"] = str(self.directory / Path(bootstrap["post_bootstrap"]).name)
        return config

    def container_command(self, command: list[str]) -> list[str]:
        """The container's command with image paths replaced by the member's: python3 -> the member
        interpreter, `patroni` -> `python -m patroni`, /etc/patroni/X -> the member directory's X."""
        return self.runtime.command(*self._image_paths(command))

    def _image_paths(self, command: list[str]) -> list[str]:
        python = str(self.runtime.python)
        mapped: list[str] = []
        for arg in command:
            if arg == "python3":
                mapped.append(python)
            elif arg == "patroni":
                mapped += [python, "-m", "patroni"]
            elif arg.startswith("/etc/patroni/"):
                mapped.append(str(self.directory / arg.removeprefix("/etc/patroni/")))
            else:
                mapped.append(arg)
        return mapped

    def start(
        self,
        config: dict[str, Any],
        env: dict[str, str],
        kubeconfig: Path | None,
        command: list[str] | None = None,
        wrap: tuple[str, ...] = (),
    ) -> None:
        """Run the container command (`wrap` goes first, before privileges are dropped)."""
        if not self.data.exists():
            self.runtime.data_dir(self.data.parent, self.data.name)
        path = self.directory / "patroni.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=True))
        path.chmod(0o644)
        member_env = {k: v for k, v in env.items() if k not in _ADDRESS_ENV}
        if "WITNESS_MODE" in member_env:  # the witness guard's own addresses and paths, as the member has them
            scheme = member_env.get("WITNESS_PATRONI_URL", "http:").split(":", 1)[0]
            member_env.update(WITNESS_PATRONI_URL=f"{scheme}://127.0.0.1:{self.rest_port}",
                              WITNESS_DATA_DIR=str(self.data), WITNESS_PATRONI_YML=str(path),
                              WITNESS_STATE_FILE=str(self.directory / "run" / "witness-guard.json"))
        if kubeconfig is not None:
            member_env["KUBECONFIG"] = str(kubeconfig)
        environment = self.runtime.env(self.directory / "run", **member_env)
        self._rest_auth = (member_env.get("PATRONI_RESTAPI_USERNAME"), member_env.get("PATRONI_RESTAPI_PASSWORD"))
        args = [*wrap, *(self.container_command(command) if command else self.runtime.patroni_command(path))]
        self.process = spawn(self.runtime, args, environment, self.directory / "patroni.log", self.directory)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (Patroni stops PostgreSQL), SIGKILL after `timeout`; a postmaster that outlived its Patroni
        (it runs in a session of its own) is killed too, so no process of the member is left."""
        with self._stopping:
            if self.process is None:
                return
            postmaster = self._postmaster_pid()
            self.process.stop(timeout)
            self.process = None
            if postmaster is not None and self._is_our_postmaster(postmaster):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(postmaster), signal.SIGKILL)

    def _is_our_postmaster(self, pid: int) -> bool:
        try:
            return str(self.data) in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return False

    def kill(self) -> None:
        """Hard failure: SIGKILL Patroni and PostgreSQL at once (no SIGTERM first: no shutdown checkpoint).
        Patroni starts the postmaster in a session of its own, so that a Patroni crash leaves it running:
        it is killed separately, through postmaster.pid."""
        with self._stopping:
            postmaster = self._postmaster_pid()
            if self.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.process.pid, signal.SIGKILL)
            if postmaster is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    # Patroni's launcher calls setsid() and exits: the postmaster's group is that launcher's pid.
                    os.killpg(os.getpgid(postmaster), signal.SIGKILL)
            if self.process is not None:
                self.process.stop(timeout=5)
                self.process = None

    def pause(self) -> None:
        """SIGSTOP Patroni (the member's process group: startup guard exec'd into Patroni). The postmaster runs
        in a session of its own and keeps serving: a hung Patroni in front of a live PostgreSQL."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.process.pid, signal.SIGCONT)

    def guard_pid(self) -> int | None:
        """The pid of the witness guard when it is the container's first process (automatic failover)."""
        if self.process is None or self.process.process.poll() is not None:
            return None
        args = self.process.process.args
        words = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
        return self.process.process.pid if any(w.endswith("witness-guard.py") for w in words) else None

    def is_leader(self) -> bool:
        return self.running and self.rest("/leader")[0] == 200

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.data / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first) if first.strip().isdigit() else None

    def restart_postgres(self) -> int:
        """POST /restart to this member's Patroni, as `patronictl restart` does (its basic auth when the chart
        sets one): Patroni stops PostgreSQL cleanly and starts it again in the role it has. The HTTP status."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.rest_port}/restart", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        user, password = self._rest_auth
        if user and password:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code)
        except OSError as exc:
            raise RolegenError(f"{self.name}: Patroni did not answer POST /restart: {exc}") from None

    def rest(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET Patroni's REST API; (0, {}) when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}{path}", timeout=1) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            exc.close()
            try:
                return exc.code, json.loads(body or b"{}")
            except ValueError:
                return exc.code, {}
        except (OSError, ValueError):
            return 0, {}

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.directory / "patroni.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

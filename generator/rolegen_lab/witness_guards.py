"""Automatic failover on the lab (`Lab(witness="automatic")`, `rolegen lab up --witness automatic`): the specs get
an automatic `witness:` block with the lab's timers, each site a Secret its members' witness guard (the chart's
witness-guard.py, run by the node agent as the container's first process) reaches the witness with, and each site
a `rolegen guard` process, the standby guard as its Deployment would run it, reached by the peer through a port
of the tunnel (LabSite.guard_link: cut with the tunnel).

The guards run the product from the lab's environments (the operator's copy): a failover a guard runs records
the new roles there, as an operator's own run would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rolegen.errors import RolegenError
from rolegen_lab import clock
from rolegen_lab.controlplane.witness import CONTEXT, NAMESPACE
from rolegen_lab.network.ports import reserve
from rolegen_lab.witness_timers import LAG_LIMIT, TIMERS, WAL_RECEIVER_TIMEOUT

if TYPE_CHECKING:
    from rolegen_lab.controlplane.witness import WitnessSite
    from rolegen_lab.site import LabSite

LEASE = "patroni-pair"
SECRET = "rolegen-witness"
def spec_block(peer_host: str, guard_port: int) -> dict[str, Any]:
    """The `witness:` block of a lab spec whose peer's guard is reached at peer_host:guard_port (the tunnel)."""
    return {
        "mode": "automatic", "replication": "async",
        "kubernetes": {"context": CONTEXT, "namespace": NAMESPACE}, "lease": LEASE, "secret": SECRET,
        "timers": dict(TIMERS), "lag_limit": {"bytes": LAG_LIMIT},
        "peer_guard": {"host": peer_host, "port": guard_port},
    }


def adapt(data: dict[str, Any], peer_host: str, guard_port: int, replication: str = "async") -> None:
    """A lab spec (as loaded) made automatic. With replication sync the baseline standby's release is renamed
    (`<release>-<environment>`): synchronous standbys are matched by member name, which must differ per site."""
    data["witness"] = spec_block(peer_host, guard_port)
    if replication == "sync":
        data["witness"]["replication"] = "sync"
        del data["witness"]["lag_limit"]
        if data["role"] == "standby-leader":
            data["helm"]["release"] = f"{data['helm']['release']}-{data['environment']}"
    postgresql = data["patroni"]["dynamic"].setdefault("postgresql", {})
    postgresql.setdefault("parameters", {})["wal_receiver_timeout"] = WAL_RECEIVER_TIMEOUT


def secret_data(witness: WitnessSite, site: str) -> dict[str, str]:
    """What a site's guard reaches the witness with: its route, the witness's CA, the lab's admin certificate."""
    pki = witness.plane.pki
    return {"server": witness.route(site).url, "ca.crt": Path(pki.ca_crt).read_text(),
            "tls.crt": Path(pki.admin_crt).read_text(), "tls.key": Path(pki.admin_key).read_text()}


class StandbyGuards:
    """One `rolegen guard --env SITE` per site: started by `start`, stopped by `stop` (every process). With
    libfaketime installed each runs on a clock `skew` can move (rolegen_lab.clock)."""

    def __init__(self, root: Path, env_dir: Path) -> None:
        self.root, self.env_dir = root / "guards", env_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def kubeconfig(self, site: str, direct: Path, witness: WitnessSite, sites: dict[str, LabSite]) -> Path:
        """`site`'s own API directly (in-cluster), the peer's through the operator's route to it (the WAN: a lost
        peer whose route drops packets answers nothing there, `lab api-slow`), the witness through `site`'s
        own route."""
        config = yaml.safe_load(direct.read_text())
        servers = {CONTEXT: witness.route(site).url}
        for name, peer in sites.items():
            if name != site and peer.api_proxy is not None:
                servers.update({c["name"]: peer.api_proxy.url for c in peer.kubeconfig_data()["clusters"]})
        for cluster in config["clusters"]:
            if cluster["name"] in servers:
                cluster["cluster"]["server"] = servers[cluster["name"]]
        path = self.root / f"{site}.kubeconfig"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def start(self, sites: dict[str, LabSite], direct: Path, witness: WitnessSite) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for name, site in sites.items():
            port = reserve()
            command = [sys.executable, "-m", "rolegen", "guard", "--env", name, "--listen", f"127.0.0.1:{port}",
                       "--every", "0.5", "--timeout", "20", "-d", str(self.env_dir),
                       "--kubeconfig", str(self.kubeconfig(name, direct, witness, sites))]
            env = {**os.environ, "KUBECACHEDIR": str(self.root / f"kube-cache-{name}"),
                   **clock.skewable(self.clock_file(name))}
            with (self.root / f"{name}.log").open("ab") as log:
                self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                        start_new_session=True)
            site.guard_address = ("127.0.0.1", port)

    def clock_file(self, site: str) -> Path:
        return self.root / f"{site}.clock"

    def skew(self, site: str, seconds: float, strict: bool = True) -> None:
        """`site`'s guard reads its wall clock `seconds` off (strict=False: nothing to do without the shim)."""
        if not strict and clock.library() is None:
            return
        process = self.processes.get(site)
        if strict and (process is None or not clock.preloaded(process.pid)):
            raise RolegenError(f"{site}'s standby guard does not run on the lab's clock shim: it cannot be skewed",
                               hint="rolegen lab down, then rolegen lab up --automatic (with cc installed)")
        clock.set_skew(self.clock_file(site), seconds)

    def skew_of(self, site: str) -> float:
        return clock.skew_of(self.clock_file(site))

    def log(self, site: str) -> str:
        path = self.root / f"{site}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def running(self) -> dict[str, bool]:
        """Per site: its guard still runs (one that exited left automatic failover disarmed)."""
        return {site: process.poll() is None for site, process in sorted(self.processes.items())}

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

"""The standby guards as the chart's Pods (`Lab(automatic=True, standby_guards="pod")`, `rolegen lab up --automatic
--guard-pods`): each spec's witness block gets `guard:` (rolegen renders the chart's `witnessGuard.standby`: the
Deployment, its ServiceAccount, Role and Service), and each site the objects that Deployment names, as an operator
creates them: the ConfigMap of the pair's specs, and the kubeconfig Secret whose contexts are this site (through
the Pod's ServiceAccount token, so the chart's Role is all the guard may do here), the peer site (the lab's admin
credentials, straight to its API server) and the witness (through this site's own route, as the guards' processes
reach it: witness_guards.StandbyGuards.kubeconfig). The node agent runs the Pod (rolegen_lab.node.guardpods); the
peer's leader guard reaches it through the tunnel's guard port (LabSite.guard_link, cut with the tunnel).

Not in this mode: a standby guard's skewed clock (the `skew` fault needs the guards as processes on the lab's clock
shim, rolegen_lab.clock).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rolegen import __version__
from rolegen_lab.controlplane.witness import CONTEXT
from rolegen_lab.node.guardpods import TOKEN_DIR

if TYPE_CHECKING:
    from rolegen_lab.controlplane.witness import WitnessSite
    from rolegen_lab.site import LabSite

CONFIG_MAP = "rolegen-environments"
KUBECONFIG_SECRET = "rolegen-guard-kubeconfig"
# No image is pulled: the node agent runs the lab's own rolegen for it (rolegen_lab.node.guardpods).
IMAGE = {"repository": "rolegen-lab/rolegen", "tag": __version__}


def spec_guard(port: int) -> dict[str, Any]:
    """The witness block's `guard:` of a lab spec: the chart runs this site's guard on `port` (the peer spec's
    peer_guard.port)."""
    return {"image": dict(IMAGE), "environments_config_map": CONFIG_MAP, "kubeconfig_secret": KUBECONFIG_SECRET,
            "port": port}


def kubeconfig(direct: dict[str, Any], context: str, server: str, witness: str) -> dict[str, Any]:
    """The guard Pod's kubeconfig of site `context`, from the lab's direct one: this site at `server` with the
    Pod's ServiceAccount token and CA (the files the kubelet mounts), the witness at `witness` (this site's
    route), every other context (the peer's) as it is."""
    config = copy.deepcopy(direct)
    for cluster in config["clusters"]:
        if cluster["name"] == context:
            cluster["cluster"] = {"server": server, "certificate-authority": f"{TOKEN_DIR}/ca.crt"}
        elif cluster["name"] == CONTEXT:
            cluster["cluster"]["server"] = witness
    for user in config["users"]:
        if user["name"] == context:
            user["user"] = {"tokenFile": f"{TOKEN_DIR}/token"}
    config["current-context"] = context
    return config


def install(sites: dict[str, LabSite], env_dir: Path, direct: Path, witness: WitnessSite) -> None:
    """Per site, before its chart: the ConfigMap of both specs and the guard's kubeconfig Secret."""
    specs = {path.name: path.read_text() for path in sorted(env_dir.glob("*.yaml"))}
    config = yaml.safe_load(direct.read_text())
    for name, site in sites.items():
        site.api.create("configmaps", {"metadata": {"name": CONFIG_MAP}, "data": specs})
        own = kubeconfig(config, site.context, site.plane.url, witness.route(name).url)
        site.create_secret(KUBECONFIG_SECRET, {"kubeconfig": yaml.safe_dump(own, sort_keys=False)})


def running(sites: dict[str, LabSite]) -> dict[str, bool]:
    """Per site: its guard Pod's process runs (or the site is lost, its Pod with it)."""
    return {name: site.agent.guards.running() for name, site in sorted(sites.items())}

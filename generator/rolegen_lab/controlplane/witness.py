"""The witness site (`rolegen lab up --witness`): a third Kubernetes control plane, etcd + kube-apiserver, whose
namespace `rolegen-witness` holds the witness Lease (rolegen.witness.lease), and one route to it per party.

Each route is an ApiProxy (rolegen_lab.network.apiproxy) in front of the witness's API server, so each link
fails on its own: a site's route (what that site's guard uses: `<root>/witness-<site>.kubeconfig`, context
`witness`) and the operator's (context `witness` in the lab's kubeconfig). A link is cut both ways (connections
refused, open ones dropped) or one way: `requests` (nothing reaches the witness) or `answers` (requests reach it
and are applied, answers are dropped: a renewal applied whose answer is lost). A witness loss stops the control
plane (every route refuses, as a dead API server's address does); a restore starts it again with its etcd data.

No kube-controller-manager: nothing in a Lease's life needs a controller, and the lab's 2 cores run two sites'
already. The lab's admin certificate is every route's identity (the guards' own RBAC comes with the guards).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from rolegen.errors import RolegenError
from rolegen_lab.controlplane.apiclient import KubeApi
from rolegen_lab.controlplane.k8sbin import K8sBinaries
from rolegen_lab.controlplane.processes import ControlPlane
from rolegen_lab.network.apiproxy import ApiProxy, server_context
from rolegen_lab.network.ports import reserve
from rolegen_lab.network.proxy import ONE_WAY

NAMESPACE = "rolegen-witness"
CONTEXT = "witness"
OPERATOR = "operator"  # the operator's route (the lab's kubeconfig); the others are named by site
DIRECTIONS = ("both", *ONE_WAY)


class WitnessSite:
    """`start()`, `close()`; `lose()`/`restore()`; `cut(party, direction)`/`heal(party)` on one route."""

    def __init__(self, root: Path, binaries: K8sBinaries, sites: Iterable[str]) -> None:
        self.root = root
        self.plane = ControlPlane(CONTEXT, root / "witness" / "control-plane", binaries, controllers=False)
        self.api = KubeApi(self.plane.url, NAMESPACE)
        self.sites = tuple(sites)
        self.routes: dict[str, ApiProxy] = {}  # party (a site, or OPERATOR) -> its route, created by start()
        self.lost = False

    def start(self) -> None:
        self.plane.start()
        self.api.tls = self.plane.ssl_context()
        tls = server_context(str(self.plane.pki.serving_crt), str(self.plane.pki.serving_key))
        for party in (*self.sites, OPERATOR):
            if party not in self.routes:  # reserved ports: a route relistens on its own after a cut
                self.routes[party] = ApiProxy(("127.0.0.1", reserve()), ("127.0.0.1", self.plane.port), tls,
                                              upstream_tls=self.plane.ssl_context())
        self.api.ensure_namespace()
        for site in self.sites:
            path = self.kubeconfig(site)
            path.write_text(yaml.safe_dump(self.kubeconfig_data(site), sort_keys=False))
            path.chmod(0o600)

    def close(self) -> None:
        for route in self.routes.values():
            route.close()
        self.plane.stop()
        self.api.close()

    # -- access -------------------------------------------------------------------------------------------
    def kubeconfig(self, site: str) -> Path:
        """The kubeconfig of a site's route (what its guard is given)."""
        return self.root / f"witness-{site}.kubeconfig"

    def kubeconfig_data(self, party: str | None) -> dict[str, Any]:
        """Context `witness` through `party`'s route; None: straight to the API server (the lab's own view)."""
        data = self.plane.kubeconfig(CONTEXT, NAMESPACE)
        if party is not None:
            for cluster in data["clusters"]:
                cluster["cluster"]["server"] = self.route(party).url
        return data

    def route(self, party: str) -> ApiProxy:
        if party not in self.routes:
            known = ", ".join(self.routes) or "none (the witness never started)"
            raise RolegenError(f"the witness has no route for {party!r}", hint=f"routes: {known}")
        return self.routes[party]

    def describe(self) -> dict[str, Any]:
        return {
            "context": CONTEXT, "namespace": NAMESPACE, "api": self.plane.url,
            "routes": {party: route.url for party, route in self.routes.items()},
            "kubeconfigs": {site: str(self.kubeconfig(site)) for site in self.sites},
        }

    # -- faults -------------------------------------------------------------------------------------------
    def cut(self, party: str, direction: str = "both") -> str:
        """`party`'s link to the witness cut both ways (refused, as a link that is down), or one way."""
        if direction not in DIRECTIONS:
            raise RolegenError(f"unknown direction {direction!r}", hint=f"one of: {', '.join(DIRECTIONS)}")
        route = self.route(party)
        if direction == "both":
            route.heal()
            route.set_mode("cut")
        else:
            route.set_mode("ok")
            route.one_way(direction)
        return party

    def heal(self, party: str | None = None) -> list[str]:
        """Links working again (default: every route's); the parties whose link changed."""
        chosen = [party] if party else list(self.routes)
        healed = [p for p in chosen if self.link(p) is not None]
        for p in healed:
            self.route(p).heal()
            self.route(p).set_mode("ok")
        return healed

    def link(self, party: str) -> str | None:
        """The cut in force on `party`'s link (`both`, `requests`, `answers`), None without one."""
        route = self.route(party)
        return "both" if route.mode == "cut" else route.cut_direction

    def lose(self) -> None:
        """The witness goes dark: its control plane stops; every route refuses (its links' cuts stay)."""
        self.plane.stop()
        self.api.close()
        for route in self.routes.values():
            route.set_upstream(False)
        self.lost = True

    def restore(self) -> None:
        """The control plane answers again with its etcd data (the Lease as it was)."""
        self.plane.start()
        self.api.tls = self.plane.ssl_context()
        for route in self.routes.values():
            route.set_upstream(True)
        self.lost = False

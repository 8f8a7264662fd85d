"""The lab's application as a dependent of both sites (README "Applications"): the `web` StatefulSet of the lab's
HTTP app (rolegen_lab.app, run by the node agent: rolegen_lab.node.apps), two instances at the leading site and
none at the standby one, declared in the lab's copies of the specs (OVERRIDES) so that the role verbs quiesce it
and bring it up, and created once the lab is up (deploy_all).

A StatefulSet rather than a Deployment (both controllers run in the lab now; the StatefulSet came first, when the
lab ran only the members' controllers). `podManagementPolicy: Parallel`, as a stateless app would have it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rolegen.offline.spec import Spec
from rolegen.offline.workspace import load_workspace
from rolegen_lab.network.proxy import Address
from rolegen_lab.node.apps import APP_LABEL

if TYPE_CHECKING:
    from rolegen_lab.lab import Lab
    from rolegen_lab.site import LabSite

NAME = "web"
REPLICAS = {"leader": 2, "standby-leader": 0}
TIMEOUT = 30  # seconds: the dependent's timeout in the lab's specs


# What a lab's `overrides` add to both specs' copies (Lab(..., overrides=OVERRIDES)): the app as their dependent.
OVERRIDES: dict[str, Any] = {
    "dependents": [{"name": NAME, "kind": "StatefulSet", "replicas": dict(REPLICAS), "timeout": TIMEOUT}],
}


def statefulset(spec: Spec) -> dict[str, Any]:
    """The app's StatefulSet at `spec`'s site, scaled for its declared role; it reaches the database through the
    site's `<release>-master` Service with the app user of the chart's Secret."""
    secret = spec.secrets.get("app") or f"{spec.release}-app"
    labels = {APP_LABEL: NAME, "app.kubernetes.io/name": NAME}

    def from_secret(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}

    container = {
        "name": NAME, "image": "rolegen-lab/app", "command": ["python", "-m", "rolegen_lab.app"],
        "env": [{"name": "DATABASE_HOST", "value": f"{spec.release}-master"},
                {"name": "DATABASE_PORT", "value": "5432"}, {"name": "DATABASE_NAME", "value": "app"},
                from_secret("DATABASE_USER", "username"), from_secret("DATABASE_PASSWORD", "password")],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
    }
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": NAME, "labels": labels},
        "spec": {"replicas": REPLICAS[spec.role], "serviceName": NAME, "podManagementPolicy": "Parallel",
                 "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"terminationGracePeriodSeconds": 5, "containers": [container]}}},
    }


def deploy_all(lab: Lab) -> None:
    """The app at both sites of a lab that is up (its specs declaring it: OVERRIDES), each scaled for its role."""
    for name, spec in load_workspace(lab.env_dir).specs.items():
        deploy(lab.sites[name], spec)


def deploy(site: LabSite, spec: Spec) -> None:
    """Create the app at `site` (its Pods then run through the node agent), its Service name mapped to the site's
    `<release>-master` proxy."""
    site.agent.apps.services[f"{spec.release}-master"] = site.proxy.address
    site.api.create("statefulsets", statefulset(spec))


def endpoints(site: LabSite) -> list[Address]:
    """The addresses of `site`'s app instances that report Ready."""
    return site.agent.apps.endpoints()

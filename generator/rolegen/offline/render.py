"""Render layer: pure functions from a Spec to Helm values, ConfigMap patches and file bytes. No IO here."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from rolegen.offline import slots, sync, yamlio
from rolegen.offline.dependents import Dependent
from rolegen.offline.load import GENERATED_DIR
from rolegen.offline.spec import GuardDeployment, Spec
from rolegen.offline.templating import render_template

# Annotations Patroni owns on <scope>-leader; cleared only by an explicit re-seed.
LEADER_ANNOTATIONS = (
    "acquireTime",
    "failsafe",
    "leader",
    "optime",
    "renewTime",
    "retain_slots",
    "slots",
    "transitions",
    "ttl",
)


def dumps_json(data: Any) -> str:
    """Compact JSON with sorted keys: the form of the `config` annotation."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dumps_yaml(data: Any) -> str:
    return yamlio.dump(data)


def standby_extras(spec: Spec) -> dict[str, Any]:
    """patroni.standby plus, with a DR slot, the `primary_slot_name` the standby streams through."""
    return slots.standby_extras(spec, copy.deepcopy(spec.standby))


def dynamic(spec: Spec) -> dict[str, Any]:
    """patroni.dynamic plus, with a DR slot, the permanent slot and its bound (the same for either role)."""
    return sync.with_sync(spec, slots.with_slot(spec, copy.deepcopy(spec.dynamic)))


def standby_cluster(spec: Spec) -> dict[str, Any]:
    """standby_cluster for a standby of `spec.peer`: host/port from peer, extra keys from standby_extras."""
    return {**standby_extras(spec), "host": spec.peer.host, "port": spec.peer.port}


def dcs_config(spec: Spec) -> dict[str, Any]:
    """The dynamic configuration Patroni should hold in `<scope>-config`'s `config` annotation."""
    config = dynamic(spec)
    if spec.role == "standby-leader":
        config["standby_cluster"] = standby_cluster(spec)
    return config


def helm_values(spec: Spec) -> dict[str, Any]:
    """Values for chart/: the role, the peer and the cluster facts; nothing in the chart names a site."""
    members = spec.members
    values: dict[str, Any] = {
        "role": spec.role,
        "peer": {"host": spec.peer.host, "port": spec.peer.port, "cidrs": list(spec.peer.cidrs)},
        "patroni": {
            "scope": spec.scope,
            "dynamic": dynamic(spec),
            "standby": standby_extras(spec),
            "labels": dict(spec.labels),
            "leaderLabelValue": spec.leader_label_value,
        },
        "auth": {name: {"existingSecret": secret} for name, secret in spec.secrets.items()},
        "tsc": {
            "create": bool(spec.tsc.get("create")),
            **({"monitor": spec.tsc["monitor"]} if "monitor" in spec.tsc else {}),
        },
        "tls": tls_values(spec),
        "startupGuard": {
            "peerUnreachable": spec.startup_guard.peer_unreachable,
            "unreachableGrace": spec.startup_guard.unreachable_grace,
        },
    }
    released = slots.released_slot(spec)
    if released is not None:  # the chart's on_role_change callback moves it after a promotion (dr_slot.py)
        values["patroni"]["drSlot"] = released
    if spec.witness is not None and spec.witness.automatic:
        values["witnessGuard"] = witness_guard_values(spec)
    rule = spec.monitoring.get("prometheus_rule")
    if rule is not None:  # only when the spec says: a chart default stays the chart's
        values["monitoring"] = {"prometheusRule": {"enabled": rule["enabled"], "labels": dict(rule.get("labels", {}))}}
    if "replicas" in members:
        values["replicaCount"] = members["replicas"]
    if "image" in members:
        image = members["image"]
        values["image"] = {"repository": image["repository"], "tag": image["tag"]}
        if "pull_policy" in image:
            values["image"]["pullPolicy"] = image["pull_policy"]
    if "resources" in members:
        values["resources"] = copy.deepcopy(members["resources"])
    if "storage" in members:
        storage = members["storage"]
        values["persistence"] = {
            "size": storage["size"],
            **({"storageClass": storage["class"]} if "class" in storage else {}),
        }
    return values


def tls_values(spec: Spec) -> dict[str, Any]:
    """The chart's `tls`: the mode, and (unless disabled) the Secret's name, never its content."""
    tls = spec.tls
    if not tls.enabled:
        return {"mode": tls.mode}
    return {"mode": tls.mode, "existingSecret": tls.secret, "clientCert": tls.client_cert, "restApi": tls.rest_api}


def configmap_patches(spec: Spec) -> dict[str, dict[str, Any]]:
    """JSON merge patches (kubectl patch --type merge) that make the live DCS objects declare the role."""
    return {spec.config_map: {"metadata": {"annotations": {"config": dumps_json(dcs_config(spec))}}}}


def reseed_patches(spec: Spec) -> dict[str, dict[str, Any]]:
    """Clear what Patroni remembers of the old cluster so a fully wiped site can clone again."""
    return {
        spec.config_map: {
            "metadata": {"annotations": {"config": dumps_json(dcs_config(spec)), "history": None, "initialize": None}}
        },
        spec.leader_map: {"metadata": {"annotations": dict.fromkeys(LEADER_ANNOTATIONS)}},
    }


@dataclass(frozen=True)
class Rendered:
    """Everything rendered for one environment."""

    environment: str
    role: str
    values: dict[str, Any]
    patches: dict[str, dict[str, Any]]
    dependents: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> its shape for the role

    def as_dict(self) -> dict[str, Any]:
        out = {
            "environment": self.environment,
            "role": self.role,
            "values": self.values,
            "configmap_patches": self.patches,
        }
        if self.dependents:  # a spec without dependents prints what it always printed
            out["dependents"] = self.dependents
        return out


def render(spec: Spec) -> Rendered:
    return Rendered(spec.environment, spec.role, helm_values(spec), configmap_patches(spec), dependent_shapes(spec))


def dependent_shapes(spec: Spec) -> dict[str, dict[str, Any]]:
    """Each dependent's shape for the spec's role (rolegen.offline.dependents.Dependent.shape), by name."""
    return {dep.name: dep.shape(spec.role) for dep in spec.dependents}


def dependent_apply(spec: Spec, dep: Dependent) -> str:
    """The command that applies a dependent's generated file by hand (what `rolegen apply` does for it)."""
    if dep.helm:
        version = f" --version {dep.version}" if dep.version else ""
        repo = f" --repo {dep.repository}" if dep.repository else ""
        return (f"helm upgrade --install {dep.release} {dep.chart}{repo}{version} -n {spec.namespace} "
                "--reset-values -f <this file>")
    return f"kubectl -n {spec.namespace} patch {dep.resource} {dep.workload} --type merge --patch-file <this file>"


def output_files(spec: Spec, rendered: Rendered, spec_ref: str) -> dict[str, str]:
    """Generated files for one environment, keyed by path relative to the environments directory.

    `spec_ref` names the spec in headers (e.g. environments/gold.yaml); it must not depend on the cwd.
    """
    base = f"{GENERATED_DIR}/{spec.environment}"
    files = {
        f"{base}/values.yaml": _with_header(spec, spec_ref, "Helm values for chart/", "", rendered.values),
    }
    for name, patch in sorted(rendered.patches.items()):
        apply = f"kubectl -n {spec.namespace} patch configmap {name} --type merge --patch-file <this file>"
        files[f"{base}/patches/{name}.yaml"] = _with_header(
            spec, spec_ref, f"JSON merge patch of ConfigMap {name}", apply, patch
        )
    for dep in spec.dependents:
        what = (f"values of dependent {dep.name} (helm release {dep.release}) for role {spec.role}" if dep.helm
                else f"merge patch of dependent {dep.name} ({dep.target}) for role {spec.role}")
        files[f"{base}/dependents/{dep.name}.yaml"] = _with_header(
            spec, spec_ref, what, dependent_apply(spec, dep), rendered.dependents[dep.name]
        )
    return files


def reseed_document(spec: Spec, spec_ref: str) -> str:
    """Multi-document YAML of the re-seed patches, with the warning that they are for wiped sites only."""
    docs = [
        render_template("reseed.yaml.j2", spec=spec, spec_ref=spec_ref, name=name, body=dumps_yaml(patch))
        for name, patch in sorted(reseed_patches(spec).items())
    ]
    return "---\n".join(docs)


def _with_header(spec: Spec, spec_ref: str, what: str, apply: str, data: dict[str, Any]) -> str:
    return render_template(
        "generated.yaml.j2", spec=spec, spec_ref=spec_ref, what=what, apply=apply, body=dumps_yaml(data)
    )


def witness_guard_values(spec: Spec) -> dict[str, Any]:
    """The chart's witnessGuard for an automatic witness: this site's name in the Lease, where the Lease is, the
    Secret the guard reaches it with (a name), the peer guard it asks for promises, and the timers."""
    witness = spec.witness
    assert witness is not None
    timers = witness.timers
    guard = witness.peer_guard
    return {
        "mode": "automatic",
        "site": spec.environment,
        "namespace": witness.namespace,
        "lease": witness.lease,
        "existingSecret": witness.secret or "",
        "promiseUrl": f"http://{guard[0]}:{guard[1]}" if guard else "",
        "replication": witness.replication,
        "syncStandbys": list(spec.sync_standbys),
        "timers": {"fenceAfter": timers.fence_after, "margin": timers.margin, "renewEvery": timers.renew_every,
                   "requestTimeout": timers.request_timeout},
        **({"standby": standby_guard_values(witness.guard)} if witness.guard is not None else {}),
    }


def standby_guard_values(guard: GuardDeployment) -> dict[str, Any]:
    """The chart's witnessGuard.standby: this site's `rolegen guard` as a Deployment (names only)."""
    image = {"repository": guard.repository, "tag": guard.tag,
             **({"pullPolicy": guard.pull_policy} if guard.pull_policy else {})}
    return {"enabled": True, "image": image, "environmentsConfigMap": guard.environments_config_map,
            "kubeconfigSecret": guard.kubeconfig_secret, "port": guard.port}

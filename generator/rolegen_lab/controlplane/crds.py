"""Custom resource definitions the platform provides and the chart uses, installed into each lab site.

Owns the TransportServerClaim CRD (porter.devops.gov.bc.ca/v1alpha1). The platform publishes no CRD;
this is its documented shape (the same as tests/chart/transportserverclaim.schema.json), so a real API
server validates the claim the chart renders. In the lab nothing acts on claims: the lab's tunnel proxy
plays the platform's operator.
"""

from __future__ import annotations

import time
from typing import Any

from rolegen.errors import RolegenError
from rolegen_lab.controlplane.apiclient import ApiError, KubeApi

_POSITIVE = {"type": "integer", "minimum": 1}
TRANSPORT_SERVER_CLAIM: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "transportserverclaims.porter.devops.gov.bc.ca"},
    "spec": {
        "group": "porter.devops.gov.bc.ca",
        "scope": "Namespaced",
        "names": {"plural": "transportserverclaims", "singular": "transportserverclaim",
                  "kind": "TransportServerClaim", "listKind": "TransportServerClaimList"},
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                "type": "object",
                "required": ["service", "servicePort", "monitor"],
                "properties": {
                    "service": {"type": "string", "minLength": 1},
                    "servicePort": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "overrideServicePort": {"type": "boolean"},
                    "monitor": {"type": "object", "required": ["interval", "timeout", "type"], "properties": {
                        "interval": _POSITIVE, "timeout": _POSITIVE, "type": {"type": "string", "enum": ["tcp"]}}},
                },
            }}}},
        }],
    },
}


def install(api: KubeApi, timeout: float = 30) -> None:
    """Create the CRDs (409: already there) and wait until the API server serves them."""
    crd = TRANSPORT_SERVER_CLAIM
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    try:
        api.request("POST", path, crd)
    except ApiError as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = api.request("GET", f"{path}/{crd['metadata']['name']}").get("status", {})
        if any(c["type"] == "Established" and c["status"] == "True" for c in status.get("conditions") or []):
            return
        time.sleep(0.1)
    raise RolegenError(f"CRD {crd['metadata']['name']} not established within {timeout:.0f}s")

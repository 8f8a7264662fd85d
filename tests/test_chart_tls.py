"""chart/'s TLS and REST API authentication, rendered by real Helm: what the members get with each `tls` mode."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests import helm_chart as chart

from rolegen.errors import RolegenError

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "chart"
NAMESPACE = "ns-under-test"


def values(**tls: Any) -> dict[str, Any]:
    """golddr's committed values (a standby with peer.cidrs), with `tls` replaced by `tls` when given."""
    data: dict[str, Any] = yaml.safe_load((REPO / "environments/generated/golddr/values.yaml").read_text())
    data = copy.deepcopy(data)
    if tls:
        data["tls"] = tls
    return data


def rendered(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(patroni.yml, the patroni container, the Pod spec)."""
    manifests = chart.render_manifests(data, "patroni", NAMESPACE, CHART)
    static, _ = chart.patroni_config(manifests)
    pod = chart.find(manifests, "StatefulSet")["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "patroni")
    return static, container, pod


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_bundled_values_run_postgresql_with_ssl_and_admit_the_peer_over_tls_only() -> None:
    static, container, pod = rendered(values())
    pg = static["postgresql"]
    assert pg["parameters"] == {"ssl": "on", "ssl_cert_file": "/etc/patroni-tls/tls.crt",
                                "ssl_key_file": "/etc/patroni-tls/tls.key", "ssl_ca_file": "/etc/patroni-tls/ca.crt"}
    hba = pg["pg_hba"]
    peer = [line for line in hba if "10.98.0.0/16" in line]
    assert peer == ["hostssl replication all 10.98.0.0/16 scram-sha-256",
                    "hostssl postgres all 10.98.0.0/16 scram-sha-256",
                    "hostnossl all all 10.98.0.0/16 reject"]
    # First match wins: the peer's plaintext is rejected before the allowedCidrs lines (0.0.0.0/0) could admit it.
    assert hba.index("hostnossl all all 10.98.0.0/16 reject") < hba.index("host all all 0.0.0.0/0 scram-sha-256")
    # Replication (the standby's link to the peer included) and pg_rewind: verify-full against ca.crt.
    client = {"sslmode": "verify-full", "sslrootcert": "/etc/patroni-tls/ca.crt"}
    assert pg["authentication"] == {"replication": client, "rewind": client}
    assert [v for v in pod["volumes"] if v["name"] == "tls"] == [
        {"name": "tls", "secret": {"secretName": "patroni-tls", "defaultMode": 0o640}}]
    assert {"name": "tls", "mountPath": "/etc/patroni-tls", "readOnly": True} in container["volumeMounts"]
    env = env_of(container)
    assert env["GUARD_SSLMODE"] == "verify-full" and env["GUARD_SSLROOTCERT"] == "/etc/patroni-tls/ca.crt"
    # Members advertise a name the certificate can carry (*.patroni-headless.<ns>.svc), not a Pod IP.
    assert env["PATRONI_POSTGRESQL_CONNECT_ADDRESS"] == f"$(PATRONI_NAME).patroni-headless.{NAMESPACE}.svc:5432"


def test_rest_api_credentials_come_from_the_secret_by_reference_only() -> None:
    _, container, _ = rendered(values())
    env = env_of(container)
    for key in ("username", "password"):
        ref = env[f"PATRONI_RESTAPI_{key.upper()}"]
        assert ref == {"secretKeyRef": {"name": "patroni-restapi", "key": key}}
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTP"


def test_tls_disabled_keeps_plain_host_lines_and_mounts_nothing() -> None:
    static, container, pod = rendered(values(mode="disabled"))
    pg = static["postgresql"]
    assert "parameters" not in pg and "authentication" not in pg
    assert "host replication all 10.98.0.0/16 scram-sha-256" in pg["pg_hba"]
    assert not any(line.startswith(("hostssl", "hostnossl")) for line in pg["pg_hba"])
    assert "tls" not in {v["name"] for v in pod["volumes"]}
    env = env_of(container)
    assert "GUARD_SSLMODE" not in env
    assert env["PATRONI_POSTGRESQL_CONNECT_ADDRESS"] == "$(PATRONI_KUBERNETES_POD_IP):5432"


def test_verify_ca_keeps_pod_ips() -> None:
    static, container, _ = rendered(values(mode="verify-ca", existingSecret="db-tls"))
    assert static["postgresql"]["authentication"]["replication"]["sslmode"] == "verify-ca"
    assert env_of(container)["PATRONI_POSTGRESQL_CONNECT_ADDRESS"] == "$(PATRONI_KUBERNETES_POD_IP):5432"


def test_client_certificate_is_required_from_the_peer_and_presented_by_patroni_and_the_guard() -> None:
    static, container, _ = rendered(values(mode="verify-full", existingSecret="db-tls", clientCert=True))
    pg = static["postgresql"]
    assert "hostssl replication all 10.98.0.0/16 scram-sha-256 clientcert=verify-ca" in pg["pg_hba"]
    for user in ("replication", "rewind"):
        assert pg["authentication"][user]["sslcert"] == "/etc/patroni-tls/tls.crt"
        assert pg["authentication"][user]["sslkey"] == "/etc/patroni-tls/tls.key"
    env = env_of(container)
    assert (env["GUARD_SSLCERT"], env["GUARD_SSLKEY"]) == ("/etc/patroni-tls/tls.crt", "/etc/patroni-tls/tls.key")


def test_rest_api_over_https_switches_the_probes() -> None:
    static, container, _ = rendered(values(mode="verify-full", existingSecret="db-tls", restApi=True))
    assert static["restapi"]["certfile"] == "/etc/patroni-tls/tls.crt"
    assert static["restapi"]["keyfile"] == "/etc/patroni-tls/tls.key"
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"


def test_tls_without_a_secret_fails_once_naming_the_value() -> None:
    data = values(mode="verify-full")
    data["tls"]["restApi"] = False
    with pytest.raises(RolegenError) as caught:
        chart.render_manifests(data, "patroni", NAMESPACE, CHART)
    assert "tls.existingSecret: required with tls.mode verify-full" in caught.value.message


def test_client_certificate_without_tls_is_refused() -> None:
    with pytest.raises(RolegenError) as caught:
        chart.render_manifests(values(mode="disabled", clientCert=True), "patroni", NAMESPACE, CHART)
    assert "tls.clientCert/tls.restApi: need TLS; tls.mode is disabled" in caught.value.message

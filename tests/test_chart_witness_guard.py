"""The chart's witness guard (values `witnessGuard`), rendered by real Helm: off by default; in automatic mode the
guard supervises the startup guard and Patroni, ships with the rules rolegen model-checks, gates Patroni's
promotions, and reads the witness credentials from a Secret it only names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests import helm_chart as chart
from tests.helpers import spec_data

from rolegen.errors import RolegenError
from rolegen.offline.render import helm_values
from rolegen.offline.spec import Spec

REPO = Path(__file__).resolve().parent.parent
AUTOMATIC = {"mode": "automatic", "site": "gold", "namespace": "rolegen-witness", "lease": "patroni-pair",
             "existingSecret": "patroni-witness", "promiseUrl": "http://patroni-guard-golddr:8099",
             "timers": {"fenceAfter": 30, "margin": 10, "renewEvery": 5, "requestTimeout": 4}}


def _values(**witness: Any) -> dict[str, Any]:
    return {**helm_values(Spec.from_dict(spec_data("gold"))), "witnessGuard": witness} if witness else \
        helm_values(Spec.from_dict(spec_data("gold")))


def _member(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = chart.find(manifests, "StatefulSet")["spec"]["template"]["spec"]
    return pod


def test_without_automatic_mode_nothing_of_the_guard_is_rendered() -> None:
    manifests = chart.render_manifests(_values(), "patroni", "ns")
    container = _member(manifests)["containers"][0]
    assert container["command"][:2] == ["python3", "/etc/patroni/startup-guard.py"]
    assert not any(e["name"].startswith("WITNESS_") for e in container["env"])
    files = chart.static_files(manifests)
    pre_promote = yaml.safe_load(files["patroni.yml"])["postgresql"]["pre_promote"]  # the DR slot's look alone
    assert "witness-guard.py" not in files and "witness-guard" not in pre_promote


def test_automatic_mode_makes_the_guard_the_containers_first_process_and_gates_promotions() -> None:
    manifests = chart.render_manifests(_values(**AUTOMATIC), "patroni", "ns")
    pod = _member(manifests)
    container = pod["containers"][0]
    assert container["command"] == ["python3", "/etc/patroni/witness-guard.py", "python3",
                                    "/etc/patroni/startup-guard.py", "patroni", "/etc/patroni/patroni.yml"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["WITNESS_MODE"], env["WITNESS_SITE"], env["WITNESS_LEASE"]) == ("automatic", "gold", "patroni-pair")
    assert env["WITNESS_FENCE_AFTER"] == "30" and env["WITNESS_PROMISE_URL"] == AUTOMATIC["promiseUrl"]
    assert env["GUARD_PEER_HOST"]  # the fence it writes names the peer, as the startup guard's does
    files = chart.static_files(manifests)
    for name in ("witness-guard.py", "witness_links.py", "witness_rules.py", "witness_sync.py", "witness_events.py",
                 "member_sql.py"):  # beside it
        source = name
        assert files[name].rstrip("\n") == (REPO / "chart/files" / source).read_text().rstrip("\n")
    patroni = yaml.safe_load(files["patroni.yml"])
    # The DR slot's look comes first in the chain and hands over: the guard's exit code is Patroni's answer.
    assert patroni["postgresql"]["pre_promote"] == ("python3 /etc/patroni/dr_slot.py --pre-promote "
                                                    "/etc/patroni/patroni.yml golddr patroni-master-golddr:5432 "
                                                    "python3 /etc/patroni/witness-guard.py --pre-promote")
    # The credentials stay in the Secret: the chart names it and mounts it where the guard reads them.
    [volume] = [v for v in pod["volumes"] if v["name"] == "witness"]
    assert volume["secret"]["secretName"] == "patroni-witness"
    assert {"name": "witness", "mountPath": "/etc/rolegen-witness", "readOnly": True} in container["volumeMounts"]


def test_automatic_mode_without_its_lease_or_secret_is_refused_naming_each_value() -> None:
    with pytest.raises(RolegenError) as err:
        chart.render_manifests(_values(mode="automatic", timers=AUTOMATIC["timers"]), "patroni", "ns")
    for key in ("site", "namespace", "lease", "existingSecret"):
        assert f"witnessGuard.{key}: required with witnessGuard.mode automatic" in err.value.message


def test_the_values_schema_types_the_timers() -> None:
    with pytest.raises(RolegenError, match="chart values rejected"):
        chart.render_manifests(_values(**{**AUTOMATIC, "timers": {**AUTOMATIC["timers"], "fenceAfter": "30s"}}),
                               "patroni", "ns")

"""TLS and REST API rules of validate (rolegen/offline/validate_tls.py), through validate_specs and the CLI."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.helpers import spec_data
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.offline.load import Document
from rolegen.offline.validate import validate_specs
from rolegen.offline.validate_tls import covers

Pair = tuple[dict[str, Any], dict[str, Any]]


def _problems(gold: dict[str, Any], golddr: dict[str, Any], severity: str) -> list[str]:
    docs = [Document(Path(f"environments/{s['environment']}.yaml"), f"environments/{s['environment']}.yaml", s)
            for s in (gold, golddr)]
    return [str(p) for p in validate_specs(docs).problems if p.severity == severity]


@pytest.fixture
def pair() -> Pair:
    return copy.deepcopy(spec_data("gold")), copy.deepcopy(spec_data("golddr"))


def test_one_site_with_tls_and_the_other_without_is_refused_on_both_files(pair: Pair) -> None:
    gold, golddr = pair
    golddr["tls"] = {"mode": "disabled"}
    errors = _problems(gold, golddr, "error")
    for env in ("gold", "golddr"):
        assert any(e.startswith(f"environments/{env}.yaml::$.tls.mode: gold requires TLS (verify-full) and golddr "
                                "has it disabled") for e in errors), errors


def test_tls_disabled_on_both_sites_is_valid_with_a_warning_each(pair: Pair) -> None:
    gold, golddr = pair
    for spec in pair:
        spec["tls"] = {"mode": "disabled"}
    assert _problems(gold, golddr, "error") == []
    warnings = _problems(gold, golddr, "warning")
    for env in ("gold", "golddr"):
        assert any(w.startswith(f"environments/{env}.yaml::$.tls.mode: TLS is disabled: replication and pg_rewind "
                                "cross the tunnel in clear text") for w in warnings), warnings


def test_client_certificate_without_tls_is_an_error_naming_the_key(pair: Pair) -> None:
    gold, golddr = pair
    for spec in pair:
        spec["tls"] = {"mode": "disabled", "client_cert": True}
    errors = _problems(gold, golddr, "error")
    assert "environments/gold.yaml::$.tls.client_cert: needs TLS, but tls.mode is disabled" in errors


def test_a_certificate_that_does_not_name_the_host_the_peer_dials_is_a_warning(pair: Pair) -> None:
    gold, golddr = pair
    gold["tls"]["server_names"] = ["patroni-master.example.org", "*.patroni-headless.f088b1-prod.svc"]
    assert _problems(gold, golddr, "error") == []
    [warning] = _problems(gold, golddr, "warning")
    assert warning.startswith("environments/gold.yaml::$.tls.server_names: golddr dials this site as "
                              "'patroni-master-gold' with sslmode verify-full, and this certificate does not name it")


def test_with_verify_ca_the_peers_host_name_is_not_checked(pair: Pair) -> None:
    gold, golddr = pair
    gold["tls"]["server_names"] = ["patroni-master.example.org"]
    golddr["tls"]["mode"] = "verify-ca"
    gold["tls"]["mode"] = "verify-ca"
    assert _problems(gold, golddr, "warning") == []


def test_members_must_be_named_too_with_verify_full(pair: Pair) -> None:
    gold, golddr = pair
    gold["tls"]["server_names"] = ["patroni-master-gold"]
    [warning] = _problems(gold, golddr, "warning")
    assert warning.startswith("environments/gold.yaml::$.tls.server_names: with verify-full, members dial each "
                              "other by name (patroni-0.patroni-headless.f088b1-prod.svc, ...)")


def test_secrets_without_a_restapi_secret_warn_that_the_rest_api_is_open(pair: Pair) -> None:
    gold, golddr = pair
    for spec in pair:
        del spec["secrets"]["restapi"]
    warnings = _problems(gold, golddr, "warning")
    assert any(w.startswith("environments/gold.yaml::$.secrets: no restapi Secret: Patroni's REST API accepts "
                            "POST /restart") for w in warnings), warnings


@pytest.mark.parametrize(
    ("names", "host", "expected"),
    [
        (("patroni-master-gold",), "patroni-master-gold", True),
        (("Patroni-Master-Gold",), "patroni-master-gold.", True),
        (("*.patroni-headless.ns.svc",), "patroni-0.patroni-headless.ns.svc", True),
        (("*.patroni-headless.ns.svc",), "a.b.patroni-headless.ns.svc", False),  # one label only
        (("*.ns.svc",), "ns.svc", False),
        (("127.0.1.1",), "127.0.1.1", True),
        (("patroni-master-gold",), "127.0.1.1", False),  # libpq checks an IP address against IP SANs
    ],
)
def test_names_cover_a_host_as_libpq_verify_full_would(names: tuple[str, ...], host: str, expected: bool) -> None:
    assert covers(names, host) is expected


def test_validate_prints_the_disabled_warning_and_exits_0(tmp_path: Path) -> None:
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    for env in ("gold", "golddr"):
        data = copy.deepcopy(spec_data(env))
        data["tls"] = {"mode": "disabled"}
        (env_dir / f"{env}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(app, ["validate", str(env_dir / "gold.yaml"), str(env_dir / "golddr.yaml")])
    assert result.exit_code == 0, result.output
    assert f"warning: {env_dir / 'gold.yaml'}::$.tls.mode: TLS is disabled" in result.output

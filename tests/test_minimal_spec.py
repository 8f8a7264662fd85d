"""The issue-2 contract's minimal spec validates: `secrets` (and the rest beyond the contract) are optional."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from rolegen.cli import app


def _minimal(env: str, role: str, peer: str, port: int) -> dict[str, object]:
    return {
        "environment": env,
        "role": role,
        "kubernetes": {"context": env, "namespace": "f088b1-prod"},
        "helm": {"release": "patroni"},
        "peer": {"environment": peer, "host": f"patroni-master-{peer}", "port": port},
        "patroni": {
            "scope": "patroni",
            "dynamic": {
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {"max_connections": 100, "max_prepared_transactions": 0,
                                   "max_locks_per_transaction": 64},
                }
            },
            "standby": {},
        },
    }


def test_minimal_pair_validates_and_renders_default_secret_names(tmp_path: Path) -> None:
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    for data in (_minimal("gold", "leader", "golddr", 53647), _minimal("golddr", "standby-leader", "gold", 53647)):
        (env_dir / f"{data['environment']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    runner = CliRunner()
    result = runner.invoke(app, ["validate", "--dir", str(env_dir)])
    assert result.exit_code == 0, result.output
    rendered = runner.invoke(app, ["render", "--env", "golddr", "--dir", str(env_dir), "-f", "json"])
    assert rendered.exit_code == 0, rendered.output
    auth = yaml.safe_load(rendered.stdout)["values"]["auth"]
    assert {k: v["existingSecret"] for k, v in auth.items()} == {
        "superuser": "patroni-superuser", "replication": "patroni-replication",
        "rewind": "patroni-rewind", "app": "patroni-app", "restapi": "patroni-restapi",
    }
    # No `tls:` is TLS required, verify-full, with the certificate in `<release>-tls`.
    assert yaml.safe_load(rendered.stdout)["values"]["tls"] == {
        "mode": "verify-full", "existingSecret": "patroni-tls", "clientCert": False, "restApi": False,
    }

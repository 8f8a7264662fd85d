"""SQL on this member's own PostgreSQL, through psql over its socket, as the superuser Patroni runs with.
Shared by the member's scripts (the witness guard's sync keeper, the DR slot callback). Needs python3, PyYAML and
psql: what a Patroni image has."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable


def psql_runner(patroni_yml: str, env: dict[str, str]) -> Callable[[str], str]:
    """One statement through psql over this member's own socket, as the superuser Patroni runs with; its
    output, unaligned."""
    import yaml  # a Patroni image has PyYAML (Patroni needs it)

    with open(patroni_yml) as handle:
        pg = yaml.safe_load(handle)["postgresql"]
    port = str(pg.get("listen", "")).rsplit(":", 1)[-1] or "5432"
    sockets = str((pg.get("parameters") or {}).get("unix_socket_directories") or "/var/run/postgresql")
    host = sockets.split(",")[0].strip()
    psql = os.path.join(pg["bin_dir"], "psql") if pg.get("bin_dir") else "psql"
    # Patroni's hooks do not get PATRONI_* (Patroni removes them from its environment): ROLEGEN_* first.
    user = env.get("ROLEGEN_SUPERUSER_USERNAME") or env.get("PATRONI_SUPERUSER_USERNAME", "postgres")
    password = env.get("ROLEGEN_SUPERUSER_PASSWORD") or env.get("PATRONI_SUPERUSER_PASSWORD", "")
    child_env = {**env, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "3"}

    def run(statement: str) -> str:
        return subprocess.run([psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port,
                               "-U", user, "-d", "postgres", "-c", statement], env=child_env, check=True,
                              timeout=5, capture_output=True, text=True).stdout.strip()

    return run

"""`rolegen import` on the lab: importing both bundled sites reproduces what the lab's specs render, and
`rolegen diff` then finds no drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster.helm import Releases
from rolegen.cluster.kubectl import Cluster
from rolegen_lab.lab import Lab

pytestmark = pytest.mark.lab
runner = CliRunner()
PEERS = {"gold": "golddr", "golddr": "gold"}


def test_import_both_lab_sites_reproduces_their_rendered_output(lab: Lab, tmp_path: Path) -> None:
    env_dir = tmp_path / "environments"
    for env, peer in PEERS.items():
        site = lab.sites[env]
        # The lab's peers are its proxies (127.0.0.1:port): nothing names the peer environment, so it is given.
        result = runner.invoke(app, [
            "import", "--env", env, "--context", site.context, "--namespace", site.namespace, "--peer-env", peer,
            "--kubeconfig", str(lab.kubeconfig), "--dir", str(env_dir),
        ])
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[0] == f"wrote {env_dir / f'{env}.yaml'}"
        assert "note:" not in result.output
    rendered = runner.invoke(app, ["render", "--all", "--dir", str(env_dir)])
    assert rendered.exit_code == 0, rendered.output
    for env in PEERS:
        for name in ("values.yaml", "patches/patroni-config.yaml"):
            mine, theirs = ([line for line in (d / "generated" / env / name).read_text().splitlines()
                             if not line.startswith("#")] for d in (env_dir, lab.env_dir))  # headers name the spec
            assert mine == theirs, f"{env}/{name}"
    diff = runner.invoke(app, ["diff", "--all", "--detailed-exitcode", "--dir", str(env_dir),
                               "--kubeconfig", str(lab.kubeconfig)])
    assert diff.exit_code == 0, diff.output
    again = runner.invoke(app, [
        "import", "--env", "gold", "--context", lab.sites["gold"].context, "--namespace",
        lab.sites["gold"].namespace, "--peer-env", "golddr", "--kubeconfig", str(lab.kubeconfig),
        "--dir", str(env_dir), "--force",
    ])
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[0] == f"Not changed: {env_dir / 'gold.yaml'}"


def test_site_installed_without_rolegen_round_trips(lab: Lab, tmp_path: Path) -> None:
    """golddr re-installed by plain Helm with hand-written values (literal names and peer, several values left
    to the chart's defaults), then imported: render + diff --detailed-exitcode = 0."""
    cluster = Cluster(lab.sites["golddr"].namespace, lab.sites["golddr"].context, lab.kubeconfig)
    release = Releases(cluster).get("patroni")
    assert release is not None
    rolegen_values = release.values
    hand = {
        "role": "standby-leader",
        "peer": dict(rolegen_values["peer"]),
        "patroni": {"scope": "patroni", "labels": {"application": "patroni"},
                    "dynamic": rolegen_values["patroni"]["dynamic"],
                    # the DR slot this standby consumes (patroni.dr_slot on both specs): not a chart default
                    "standby": {"primary_slot_name": rolegen_values["patroni"]["standby"]["primary_slot_name"]}},
        **{k: rolegen_values[k] for k in ("replicaCount", "image", "resources", "persistence")},
        "auth": {k: {"existingSecret": f"patroni-{k}"} for k in ("superuser", "replication", "rewind", "app",
                                                                 "restapi")},
        "tls": dict(rolegen_values["tls"]),  # the site's certificate Secret and mode: no default can name them
    }  # no tsc, leaderLabelValue: the chart's defaults
    Releases(cluster).upgrade_install("patroni", hand)
    # The chart's default guard policy (wait) differs from golddr's rendered one (start): the Pods roll.
    lab.wait_role("golddr", "standby-leader", timeout=120)
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    shutil.copy(lab.env_dir / "gold.yaml", env_dir / "gold.yaml")  # the peer's spec, for the pair rules
    result = runner.invoke(app, [
        "import", "--env", "golddr", "--context", lab.sites["golddr"].context, "--namespace",
        lab.sites["golddr"].namespace, "--peer-env", "gold", "--kubeconfig", str(lab.kubeconfig),
        "--dir", str(env_dir),
    ])
    assert result.exit_code == 0, result.output
    assert "note:" not in result.output
    rendered = runner.invoke(app, ["render", "--all", "--dir", str(env_dir)])
    assert rendered.exit_code == 0, rendered.output
    diff = runner.invoke(app, ["diff", "--env", "golddr", "--detailed-exitcode", "--dir", str(env_dir),
                               "--kubeconfig", str(lab.kubeconfig)])
    assert diff.exit_code == 0, diff.output
    assert """values   $.tsc: not set, declared {"create":false} = the chart's default (no change)""" in diff.output
    assert diff.output.rstrip().endswith("no drift")
    apply = runner.invoke(app, ["apply", "--env", "golddr", "--dry-run", "--dir", str(env_dir),
                                "--kubeconfig", str(lab.kubeconfig)])
    assert apply.exit_code == 0, apply.output
    assert apply.output.splitlines()[-1] == "golddr: dry run, nothing changed (nothing to change)"

"""The spec's `witness:` block (schemas/environment.schema.json, rolegen.offline.validate_witness): optional, checked
one spec at a time (types, the timers' order, what a mode needs) and as a pair (both or neither, the same block,
at a third site); every error as `file::$.path: message`, all of them, and nothing rendered while any stands."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.helpers import spec_data, write_spec
from typer.testing import CliRunner

from rolegen.cli import app

runner = CliRunner()
WITNESS: dict[str, Any] = {
    "kubernetes": {"context": "witness", "namespace": "rolegen-witness"},
    "lease": "patroni-pair",
}
AUTOMATIC: dict[str, Any] = {**WITNESS, "mode": "automatic", "secret": "patroni-witness",
                             "lag_limit": {"bytes": 16 << 20}}


def declare(workdir: Path, gold: dict[str, Any] | None, golddr: dict[str, Any] | None) -> None:
    """The bundled pair with `witness:` set as given on each site (None: no block)."""
    for env, block in (("gold", gold), ("golddr", golddr)):
        data = spec_data(env)
        if block is not None:
            data["witness"] = copy.deepcopy(block)
        write_spec(workdir / "environments", data)


def errors(*args: str) -> list[str]:
    """`rolegen validate`'s error lines (exit 1 asserted); warnings left out."""
    result = runner.invoke(app, ["validate", *args])
    assert result.exit_code == 1, result.output
    return [line for line in result.stderr.splitlines() if line.startswith("environments/")]


def generated(workdir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(workdir)): p.read_bytes()
            for p in sorted((workdir / "environments" / "generated").rglob("*")) if p.is_file()}


def test_a_pair_without_the_block_or_with_the_same_manual_one_validates_and_renders_the_same(workdir: Path) -> None:
    before = generated(workdir)
    declare(workdir, WITNESS, WITNESS)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output  # manual mode, contexts named: nothing to say
    assert runner.invoke(app, ["render", "--all", "--check"]).exit_code == 0  # the witness changes no file
    assert generated(workdir) == before


def test_automatic_mode_needs_its_secret_and_lag_limit_and_says_what_is_partial(workdir: Path) -> None:
    declare(workdir, AUTOMATIC, AUTOMATIC)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert ("warning: environments/gold.yaml::$.witness.mode: automatic failover is partial (docs/witness.md, "
            "\"Not built yet\"): the lab drills of its partition matrix have not run ten times each yet; the standby "
            "guard's Pod has run drills on the lab only, in no real cluster") in result.stderr
    assert "move the witness Lease" not in result.stderr  # switchover, failover and failback move it
    assert ("warning: environments/golddr.yaml::$.witness.peer_guard: not set: this site's leader guard holds only "
            "the witness Lease") in result.stderr
    bare = {k: v for k, v in AUTOMATIC.items() if k not in ("secret", "lag_limit")}
    declare(workdir, bare, bare)
    found = errors()
    for env in ("gold", "golddr"):
        assert (f"environments/{env}.yaml::$.witness.lag_limit: required with mode automatic and replication async: "
                "the most WAL (bytes) the standby may lack for an automatic failover, the loss it accepts; beyond "
                "it the failover stays manual") in found
        assert (f"environments/{env}.yaml::$.witness.secret: required with mode automatic: the Secret (a name) "
                "holding the credentials the site's guard reaches the witness with") in found


def test_sync_replication_refuses_a_lag_limit_and_says_manual_mode_renders_nothing(workdir: Path) -> None:
    sync = {**WITNESS, "replication": "sync", "lag_limit": {"bytes": 1}}
    declare(workdir, sync, sync)
    assert ("environments/gold.yaml::$.witness.lag_limit: means nothing with replication sync (no commit the leader "
            "acknowledged is missing on the standby): remove it") in errors()
    del sync["lag_limit"]
    declare(workdir, sync, sync)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0  # manual mode: nothing automatic relies on it, and nothing renders it: said
    assert "$.witness.replication: sync takes effect with mode automatic only" in result.output


SYNC = {k: v for k, v in {**AUTOMATIC, "replication": "sync"}.items() if k != "lag_limit"}


def test_sync_with_automatic_needs_distinct_member_names_on_the_two_sites(workdir: Path) -> None:
    """Both bundled sites run release `patroni`: a gold replica named patroni-0 would confirm for golddr's."""
    declare(workdir, SYNC, SYNC)
    found = errors()
    for env in ("gold", "golddr"):
        assert (f"environments/{env}.yaml::$.helm.release: replication sync needs distinct member names on the two "
                "sites, and gold and golddr both run patroni-0: PostgreSQL matches a synchronous standby by "
                "that name, so the leader's own replica would confirm commits the other site lacks; give the "
                "sites different helm.release names") in found


def test_sync_with_automatic_renders_each_sites_peer_members_as_its_synchronous_standbys(workdir: Path) -> None:
    for env in ("gold", "golddr"):
        data = spec_data(env)
        data["witness"] = copy.deepcopy(SYNC)
        data["helm"]["release"] = f"db-{env}"
        data["members"]["replicas"] = 3 if env == "golddr" else 2
        write_spec(workdir / "environments", data)
    result = runner.invoke(app, ["render", "--all"])
    assert result.exit_code == 0, result.output
    for env, peer in (("gold", '"db-golddr-0", "db-golddr-1", "db-golddr-2"'), ("golddr", '"db-gold-0", "db-gold-1"')):
        values = yaml.safe_load((workdir / "environments/generated" / env / "values.yaml").read_text())
        parameters = values["patroni"]["dynamic"]["postgresql"]["parameters"]
        assert parameters["synchronous_standby_names"] == f"ANY 1 ({peer})"
        assert parameters["synchronous_commit"] == "on"
        guard = values["witnessGuard"]
        assert guard["replication"] == "sync" and guard["syncStandbys"] == [n.strip('" ') for n in peer.split(",")]
    data = spec_data("gold")
    data["witness"], data["helm"]["release"] = copy.deepcopy(SYNC), "db-gold"
    data["patroni"]["dynamic"]["postgresql"]["parameters"]["synchronous_standby_names"] = "*"
    write_spec(workdir / "environments", data)
    assert ("environments/gold.yaml::$.patroni.dynamic.postgresql.parameters.synchronous_standby_names: set by "
            "rolegen with witness replication sync (the peer's members, confirming each commit): remove it") in errors()


@pytest.mark.parametrize(("change", "expected"), [
    ({"mode": "auto"}, "$.witness.mode: 'auto' is not one of ['manual', 'automatic']"),
    ({"replication": "semi"}, "$.witness.replication: 'semi' is not one of ['async', 'sync']"),
    ({"lease": "Patroni_Pair"}, "$.witness.lease: 'Patroni_Pair' does not match"),
    ({"secret": {"username": "guard"}}, "$.witness.secret: {'username': 'guard'} is not of type 'string'"),
    ({"kubernetes": {"namespace": "w"}}, "$.witness.kubernetes: 'context' is a required property"),
    ({"timers": {"fence_after": "30s"}}, "$.witness.timers.fence_after: '30s' is not of type 'number'"),
    ({"timers": {"margin": 0}}, "$.witness.timers.margin: 0 is less than or equal to the minimum of 0"),
    ({"timers": {"grace": 5}}, "$.witness.timers: Additional properties are not allowed ('grace' was unexpected)"),
    ({"lag_limit": {"bytes": -1}}, "$.witness.lag_limit.bytes: -1 is less than the minimum of 0"),
    ({"lag_limit": {"seconds": 30}}, "$.witness.lag_limit: 'bytes' is a required property"),
])
def test_a_bad_field_is_named_by_file_and_path(workdir: Path, change: dict[str, Any], expected: str) -> None:
    declare(workdir, {**AUTOMATIC, **change}, AUTOMATIC)
    assert any(line.startswith(f"environments/gold.yaml::{expected}") for line in errors()), expected


def test_timers_out_of_order_are_each_named_at_their_path_and_nothing_is_written(workdir: Path) -> None:
    bad = {**AUTOMATIC, "timers": {"fence_after": 12, "renew_every": 5, "request_timeout": 6}}
    declare(workdir, bad, bad)
    spec_before = (workdir / "environments" / "gold.yaml").read_bytes()
    before = generated(workdir)
    result = runner.invoke(app, ["render", "--env", "gold", "--role", "standby-leader"])
    assert result.exit_code == 1
    found = [line for line in result.stderr.splitlines() if line.startswith("environments/gold.yaml")]
    assert found == [
        "environments/gold.yaml::$.witness.timers.renew_every: renew_every (5s) must be at most a third of "
        "fence_after (12s): one lost renewal must not fence the leader",
        "environments/gold.yaml::$.witness.timers.request_timeout: request_timeout (6s) must be shorter than "
        "renew_every (5s)",
    ]
    assert (workdir / "environments" / "gold.yaml").read_bytes() == spec_before  # the role was not recorded
    assert generated(workdir) == before


def test_the_block_is_declared_in_both_specs_or_neither(workdir: Path) -> None:
    declare(workdir, WITNESS, None)
    message = ("$.witness: witness is declared in environments/gold.yaml and not in environments/golddr.yaml; the "
               "pair shares one witness: give both specs the same witness block (each may name its own secret), or "
               "remove it from both")
    assert errors() == [f"environments/gold.yaml::{message}", f"environments/golddr.yaml::{message}"]


def test_every_shared_field_that_differs_is_named_in_both_files_but_the_secret_may(workdir: Path) -> None:
    other = {**AUTOMATIC, "mode": "manual", "lease": "other", "secret": "golddr-witness",
             "kubernetes": {"context": "witness2", "namespace": "rolegen-witness"},
             "timers": {"fence_after": 60}, "lag_limit": {"bytes": 0}}
    declare(workdir, AUTOMATIC, other)
    found = errors()
    shared = "the pair shares one witness: give both specs the same witness block (each may name its own secret)"
    for path, values in (("mode", "gold ('automatic') and golddr ('manual')"),
                         ("kubernetes.context", "gold ('witness') and golddr ('witness2')"),
                         ("lease", "gold ('patroni-pair') and golddr ('other')"),
                         ("timers.fence_after", "gold (30s) and golddr (60s)"),
                         ("lag_limit", "gold (16777216 bytes) and golddr (0 bytes)")):
        for env in ("gold", "golddr"):
            assert f"environments/{env}.yaml::$.witness.{path}: witness.{path} differs between {values}; " \
                   f"{shared}" in found
    assert not any("secret" in line.split(": ", 1)[0] for line in found)
    assert len(found) == 10


def test_a_witness_in_either_sites_own_context_is_no_third_site(workdir: Path) -> None:
    inside = {**WITNESS, "kubernetes": {"context": "golddr", "namespace": "rolegen-witness"}}
    declare(workdir, inside, inside)
    message = ("$.witness.kubernetes.context: 'golddr' is golddr's own context: a witness in one of the two sites is "
               "no third site; name the context of a cluster at a third location")
    assert errors() == [f"environments/gold.yaml::{message}", f"environments/golddr.yaml::{message}"]


def test_a_site_without_a_context_leaves_the_third_site_unchecked_with_a_warning(workdir: Path) -> None:
    declare(workdir, WITNESS, WITNESS)
    path = workdir / "environments" / "gold.yaml"
    data = yaml.safe_load(path.read_text())
    del data["kubernetes"]["context"]
    write_spec(workdir / "environments", data)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert ("warning: environments/gold.yaml::$.witness.kubernetes.context: gold has no kubernetes.context "
            "(kubectl's current context): whether the witness is at a third site cannot be checked") in result.stderr


def test_automatic_mode_renders_the_charts_witness_guard_with_each_sites_peer_guard(workdir: Path) -> None:
    """Each site's values name itself in the Lease, its own Secret and its peer's guard; manual mode renders none."""
    guards = {"gold": ("patroni-guard-golddr", 8099), "golddr": ("patroni-guard-gold", 8099)}
    for env in ("gold", "golddr"):
        data = spec_data(env)
        host, port = guards[env]
        data["witness"] = {**copy.deepcopy(AUTOMATIC), "secret": f"witness-{env}",
                           "peer_guard": {"host": host, "port": port}}
        write_spec(workdir / "environments", data)
    result = runner.invoke(app, ["render", "--all"])
    assert result.exit_code == 0, result.output
    for env in ("gold", "golddr"):
        values = yaml.safe_load((workdir / "environments" / "generated" / env / "values.yaml").read_text())
        guard = values["witnessGuard"]
        assert (guard["mode"], guard["site"], guard["existingSecret"]) == ("automatic", env, f"witness-{env}")
        assert guard["promiseUrl"] == "http://{}:{}".format(*guards[env])
        assert guard["lease"] == "patroni-pair" and guard["timers"]["fenceAfter"] == 30

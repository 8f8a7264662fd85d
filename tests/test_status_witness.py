"""`rolegen status` with a witness (rolegen.witness.status): the Lease's holder, published LSN, renewTime as written
and transitions, the mode, and whether automatic failover is armed; a failed read shown as one, never as "no lease";
in automatic mode a witness that does not arm the failover fails the verdict with the command that clears it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import spec_data, write_spec
from tests.test_prometheus import promtool
from tests.test_status import live, state  # noqa: F401 - the fixture
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster import pair as pair_module
from rolegen.cluster.kubectl import ClusterUnreachable, witness_cluster_for
from rolegen.offline.spec import Witness
from rolegen.witness.lease import LSN

runner = CliRunner()
WITNESS = {"kubernetes": {"context": "witness", "namespace": "rolegen-witness"}, "lease": "patroni-pair"}
AUTOMATIC = {**WITNESS, "mode": "automatic", "secret": "patroni-witness", "lag_limit": {"bytes": 16 << 20}}
RENEWED = "2026-12-02T03:04:05.000006Z"
KUBECTL = "kubectl --context witness -n rolegen-witness"


def lease(holder: str | None, lsn: int | None = 83886176, transitions: int = 2) -> dict[str, Any]:
    annotations = {LSN: str(lsn)} if lsn is not None else {}
    return {"metadata": {"name": "patroni-pair", "resourceVersion": "41", "annotations": annotations},
            "spec": {"holderIdentity": holder, "renewTime": RENEWED, "leaseTransitions": transitions}}


class WitnessSite:
    """The third site's API as status reaches it: `answer` is the Lease, None (absent) or an error to raise."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] | Exception | None = None
        self.reached: list[tuple[str | None, str, str, str]] = []  # (context, namespace, kind, name) per read

    def client(self, witness: Witness, kubeconfig: Path | None = None, cache_dir: Path | None = None) -> Any:
        site = self

        class Client:
            namespace = witness.namespace

            def get(self, kind: str, name: str) -> dict[str, Any] | None:
                site.reached.append((witness.context, witness.namespace, kind, name))
                if isinstance(site.answer, Exception):
                    raise site.answer
                return site.answer

        return Client()


@pytest.fixture
def witness(monkeypatch: pytest.MonkeyPatch) -> WitnessSite:
    site = WitnessSite()
    monkeypatch.setattr(pair_module, "witness_cluster_for", site.client)
    return site


def declare(workdir: Path, block: dict[str, Any]) -> None:
    for env in ("gold", "golddr"):
        data = spec_data(env)
        data["witness"] = copy.deepcopy(block)
        write_spec(workdir / "environments", data)


def status(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["status", *args])
    assert result.exit_code == code, result.output
    return result.stdout


def healthy_pair(live: dict[str, Any]) -> None:  # noqa: F811
    live.update(gold=state("gold", "leader"), golddr=state("golddr", "standby-leader"))


def test_without_a_witness_status_reads_none_and_shows_none(live: dict[str, Any], witness: WitnessSite,  # noqa: F811
                                                            workdir: Path) -> None:
    healthy_pair(live)
    assert "witness" not in status()
    assert json.loads(status("-f", "json"))["witness"] is None
    assert "rolegen_witness" not in status("-f", "prometheus")
    assert witness.reached == []


def test_manual_mode_shows_the_lease_as_read_and_never_arms(live: dict[str, Any], witness: WitnessSite,  # noqa: F811
                                                            workdir: Path) -> None:
    healthy_pair(live)
    declare(workdir, WITNESS)
    witness.answer = lease("gold")
    lines = status().splitlines()
    at = lines.index("witness (context witness, namespace rolegen-witness): lease patroni-pair; mode manual, "
                     "replication async")
    assert lines[at + 1:at + 3] == [
        f"  holder gold  published lsn 0/5000060  renewed {RENEWED}  transitions 2",
        "  automatic failover: not armed (mode manual: every failover is manual)",
    ]
    assert lines[-1] == "healthy"
    assert witness.reached[0] == ("witness", "rolegen-witness", "lease", "patroni-pair")
    data = json.loads(status("-f", "json"))["witness"]
    assert data["lease"] == {"holder": "gold", "resource_version": "41", "published_lsn": 83886176,
                             "published_lsn_text": "0/5000060", "renew_time": RENEWED, "transitions": 2}
    assert (data["mode"], data["replication"], data["armed"], data["read"], data["declared_leader"]) == \
        ("manual", "async", False, True, "gold")
    assert data["timers"] == {"fence_after": 30, "margin": 5, "renew_every": 5, "request_timeout": 4}


def test_manual_mode_shows_a_failed_read_as_one_and_stays_healthy(live: dict[str, Any],  # noqa: F811
                                                                  witness: WitnessSite, workdir: Path) -> None:
    healthy_pair(live)
    declare(workdir, WITNESS)
    witness.answer = ClusterUnreachable("cannot reach the cluster of context witness: i/o timeout")
    out = status()
    assert ("witness (context witness, namespace rolegen-witness): lease patroni-pair; mode manual, replication "
            "async; UNREADABLE: cannot reach the cluster of context witness: i/o timeout") in out
    assert "does not exist" not in out and out.rstrip().endswith("healthy")
    data = json.loads(status("-f", "json"))["witness"]
    assert (data["read"], data["lease"], data["error"]) == \
        (False, None, "cannot reach the cluster of context witness: i/o timeout")
    witness.answer = None  # the Lease is not there: said so, still no problem in manual mode
    assert "  lease patroni-pair does not exist" in status()


def test_automatic_mode_is_armed_while_the_declared_leader_holds_the_lease(live: dict[str, Any],  # noqa: F811
                                                                           witness: WitnessSite,
                                                                           workdir: Path) -> None:
    healthy_pair(live)
    declare(workdir, AUTOMATIC)
    witness.answer = lease("gold")
    out = status()
    assert ("lease patroni-pair; mode automatic, replication async (lag limit 16777216 bytes, 16.0 MiB)") in out
    assert "  automatic failover: armed (gold, declared leader, holds the lease)" in out
    assert json.loads(status("-f", "json"))["witness"]["armed"] is True
    metrics = status("-f", "prometheus")
    lines = metrics.splitlines()
    for line in ("rolegen_witness_up 1", "rolegen_witness_armed 1", 'rolegen_witness_lease_held{site="gold"} 1',
                 'rolegen_witness_lease_held{site="golddr"} 0', "rolegen_witness_published_lsn_bytes 83886176",
                 "rolegen_pair_healthy 1"):
        assert line in lines, line
    checked = promtool(metrics)
    assert checked.returncode == 0 and checked.stdout == "" and checked.stderr == "", checked


def test_automatic_mode_with_an_unreadable_witness_is_a_problem_naming_a_command(live: dict[str, Any],  # noqa: F811
                                                                                 witness: WitnessSite,
                                                                                 workdir: Path) -> None:
    healthy_pair(live)
    declare(workdir, AUTOMATIC)
    witness.answer = ClusterUnreachable("cannot reach the cluster of context witness: i/o timeout")
    out = status(code=1)
    assert ("NOT HEALTHY: witness lease patroni-pair unreadable (context witness): automatic failover cannot be "
            f"shown armed; clear: check the route to the witness site: {KUBECTL} get lease patroni-pair") in out
    assert "  automatic failover: not armed (the witness could not be read)" in out
    lines = status("-f", "prometheus").splitlines()
    assert "rolegen_witness_up 0" in lines and "rolegen_witness_armed 0" in lines
    assert not [line for line in lines if line.startswith("rolegen_witness_lease_held")]  # unknown, not 0
    assert "rolegen_pair_healthy 0" in lines


def test_automatic_mode_without_the_lease_names_what_creates_it(live: dict[str, Any],  # noqa: F811
                                                                witness: WitnessSite, workdir: Path) -> None:
    healthy_pair(live)
    declare(workdir, AUTOMATIC)
    witness.answer = None
    out = status(code=1)
    assert ("NOT HEALTHY: witness lease patroni-pair does not exist (context witness, namespace rolegen-witness): "
            "automatic failover is not armed; clear: gold's witness guard creates it at its first renewal; if none "
            "runs, create it held by gold (docs/witness.md, \"The spec's witness block\")") in out


def test_automatic_mode_with_another_holder_names_the_patch_or_the_render(live: dict[str, Any],  # noqa: F811
                                                                          witness: WitnessSite,
                                                                          workdir: Path) -> None:
    healthy_pair(live)
    declare(workdir, AUTOMATIC)
    witness.answer = lease("golddr", lsn=None)
    out = status(code=1)
    assert ("NOT HEALTHY: witness lease patroni-pair is held by golddr, not gold (its spec declares leader): "
            "automatic failover is not armed (only the holder may lead); clear: give it to the site that leads: "
            f"{KUBECTL} patch lease patroni-pair --type merge -p '{{\"spec\":{{\"holderIdentity\":\"gold\"}}}}'") in out
    assert "  holder golddr  published lsn -  renewed" in out
    assert "  automatic failover: not armed (golddr holds the lease, gold is declared leader)" in out
    # golddr leads now (a failover the specs have not recorded): the lease is right, the spec lags behind.
    live.update(gold=state("gold", "standby-leader"), golddr=state("golddr", "leader"))
    assert ("clear: the spec lags behind: rolegen render --env golddr --role leader (records it)") in status(code=1)


def test_the_witness_client_uses_the_third_sites_context_and_the_guards_request_timeout() -> None:
    block = Witness.from_dict({**WITNESS, "timers": {"request_timeout": 2.5, "renew_every": 5}})
    assert block is not None
    cluster = witness_cluster_for(block)
    assert (cluster.context, cluster.namespace, cluster.request_timeout) == ("witness", "rolegen-witness", 3)

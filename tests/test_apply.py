"""`rolegen apply` without a cluster: the order of steps, refusals and messages, with the cluster faked at the
seams apply uses (read_plan, read_site, Releases, Cluster.merge_patch). The real thing runs in
tests/lab/test_diff_apply.py."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from rolegen import prompt
from rolegen.cli import app
from rolegen.commands import apply as apply_cmd
from rolegen.helm import ReleaseInfo
from rolegen.kubectl import ClusterUnreachable, Conflict
from rolegen.records import Records
from rolegen.render import dcs_config
from rolegen.site_diff import Difference, SitePlan
from rolegen.site_state import Member, SiteState
from rolegen.spec import Spec
from rolegen.workspace import load_workspace

runner = CliRunner()


def leader_lock(holder: str) -> dict[str, str]:
    """A fresh `<scope>-leader` lock held by `holder`: live roles count only for the lock holder."""
    return {"leader": holder, "renewTime": datetime.now(UTC).isoformat(), "ttl": "30"}


class FakeCluster:
    def __init__(self, conflict: bool = False) -> None:
        self.name = "gold"
        self.conflict = conflict
        self.patches: list[tuple[str, str, dict[str, Any], str | None]] = []

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None) -> None:
        if self.conflict:
            raise Conflict("patch configmap patroni-config on context gold: changed by someone else")
        self.patches.append((kind, name, patch, resource_version))


class FakeStore:
    """rolegen.records.RecordStore in memory: the lease apply takes on both sites, without a cluster."""

    leases: ClassVar[dict[str, Records]] = {}

    def __init__(self, spec: Spec, cluster: Any) -> None:
        self.spec = spec

    def read(self) -> Records:
        return FakeStore.leases.get(self.spec.environment, Records())

    def ensure(self) -> Records:
        return FakeStore.leases.setdefault(self.spec.environment, Records(resource_version="1"))

    def write(self, values: dict[str, Any], resource_version: str) -> None:
        current = self.ensure()
        assert current.resource_version == resource_version
        lease = values.get("rolegen.io/lease", current.lease)
        FakeStore.leases[self.spec.environment] = dataclasses.replace(
            current, lease=lease, resource_version=str(int(resource_version) + 1)
        )


class FakeReleases:
    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def __init__(self, cluster: Any) -> None:
        pass

    def upgrade_install(self, name: str, values: dict[str, Any], yield_config_of: str | None = None) -> ReleaseInfo:
        assert yield_config_of == "patroni-config"  # Helm may take only the DCS config annotation back
        FakeReleases.calls.append((name, values))
        return ReleaseInfo(name, 4, "deployed", values)


@dataclasses.dataclass
class Fakes:
    cluster: FakeCluster
    sites: list[SiteState]  # what read_site returns, in order (the last one repeats)
    reads: list[str] = dataclasses.field(default_factory=list)


def state(spec: Spec, role: str | None, config: dict[str, Any] | None = None, rv: str = "8") -> SiteState:
    members = [Member("patroni-0", role, "running", 1, 1, None)]
    return SiteState(
        spec.environment,
        config if config is not None else dcs_config(spec),
        rv,
        leader_annotations=leader_lock("patroni-0"),
        members=members,
    )


def plan_for(spec: Spec, *diffs: Difference, live: dict[str, Any] | None = None, **kw: Any) -> SitePlan:
    fields: dict[str, Any] = {
        "environment": spec.environment,
        "context": spec.context,
        "namespace": spec.namespace,
        "release": spec.release,
        "declared_role": spec.role,
        "live_role": spec.role,
        "dcs_role": spec.role,
        "revision": 3,
        "release_status": "deployed",
        "differences": diffs,
        "patroni_owned": {},
        "live_config": live if live is not None else dcs_config(spec),
        "target_config": dcs_config(spec),
        "config_resource_version": "7",
    }
    fields.update(kw)
    return SitePlan(**fields)


@pytest.fixture
def specs(workdir: Path) -> dict[str, Spec]:
    return load_workspace(workdir / "environments").specs


class FakeClock:
    """apply's waits run on this clock: sleeping advances it, so a timeout is reached at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apply_cmd, "time", FakeClock())


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, specs: dict[str, Spec]) -> Iterator[Any]:
    """install(plan, sites=..., conflict=...) wires the fakes; returns what they recorded."""
    FakeReleases.calls = []
    FakeStore.leases = {}
    monkeypatch.setattr(apply_cmd, "Releases", FakeReleases)
    monkeypatch.setattr(apply_cmd, "RecordStore", FakeStore)

    def install(plan: SitePlan, sites: list[SiteState] | None = None, conflict: bool = False) -> Fakes:
        f = Fakes(FakeCluster(conflict), sites or [state(specs[plan.environment], plan.declared_role)])

        def read_site(spec: Spec, cluster: Any) -> SiteState:
            f.reads.append(spec.environment)
            return f.sites.pop(0) if len(f.sites) > 1 else f.sites[0]

        monkeypatch.setattr(apply_cmd, "read_plan", lambda *a, **k: (plan, f.cluster))
        monkeypatch.setattr(apply_cmd, "read_site", read_site)
        return f

    yield install


def apply(*args: str) -> Any:
    return runner.invoke(app, ["apply", *args])


def test_env_is_required() -> None:
    result = apply("--yes")
    assert result.exit_code == 2 and "--env" in result.output


def test_stale_generated_files_are_refused_before_the_cluster_is_read(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apply_cmd, "read_plan", lambda *a, **k: pytest.fail("cluster read"))
    spec = workdir / "environments/gold.yaml"
    spec.write_text(spec.read_text().replace("interval: 10", "interval: 15"))
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 1
    assert "error: refusing to apply gold: 1 generated file(s) stale" in result.stderr
    assert "hint: review the diff above, then run: rolegen render --env gold" in result.stderr
    assert "+    interval: 15" in result.stdout  # the diff, on stdout


def test_nothing_to_do_is_not_changed_and_never_asks(fakes: Any, specs: dict[str, Spec]) -> None:
    f = fakes(plan_for(specs["gold"]))
    result = apply("--env", "gold")  # no --yes and no TTY: asking would fail
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "Not changed"
    assert f.cluster.patches == [] and FakeReleases.calls == []


def test_without_a_terminal_apply_needs_yes_and_changes_nothing(fakes: Any, specs: dict[str, Spec]) -> None:
    f = fakes(plan_for(specs["gold"], Difference("config", "$.ttl", "changed", 10, 30), live={"ttl": 10}))
    result = apply("--env", "gold")
    assert result.exit_code == 1
    assert "config   $.ttl: 10 -> 30" in result.stdout  # the plan is shown before asking
    assert "error: confirmation needed, but stdin is not a terminal\nhint: re-run with --yes" in result.stderr
    assert f.cluster.patches == [] and FakeReleases.calls == []


def test_answering_no_aborts(fakes: Any, specs: dict[str, Spec], monkeypatch: pytest.MonkeyPatch) -> None:
    f = fakes(plan_for(specs["gold"], Difference("config", "$.ttl", "changed", 10, 30), live={"ttl": 10}))
    monkeypatch.setattr(prompt, "_interactive", lambda: True)
    result = runner.invoke(app, ["apply", "--env", "gold"], input="n\n")
    assert result.exit_code == 1 and "error: aborted: nothing changed" in result.stderr
    assert f.cluster.patches == []


def test_dry_run_shows_the_plan_and_writes_nothing(fakes: Any, specs: dict[str, Spec]) -> None:
    f = fakes(plan_for(specs["gold"], Difference("config", "$.ttl", "changed", 10, 30), live={"ttl": 10}))
    result = apply("--env", "gold", "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "gold: dry run, nothing changed"
    assert f.cluster.patches == [] and FakeReleases.calls == [] and f.reads == []


def test_config_only_drift_patches_with_the_version_that_was_shown(fakes: Any, specs: dict[str, Spec]) -> None:
    gold = specs["gold"]
    f = fakes(plan_for(gold, Difference("config", "$.ttl", "changed", 10, 30), live={"ttl": 10}))
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 0, result.output
    [(kind, name, patch, version)] = f.cluster.patches
    assert (kind, name, version) == ("configmap", "patroni-config", "7")
    assert set(patch["metadata"]["annotations"]) == {"config"}
    assert FakeReleases.calls == []  # values unchanged: no new revision
    assert "gold: config annotation written" in result.stdout


def test_values_drift_runs_helm_with_the_generated_file_then_rereads_the_config(
    fakes: Any, specs: dict[str, Spec]
) -> None:
    gold = specs["gold"]
    after_helm = state(gold, "leader", config={"ttl": 1}, rv="12")  # Helm rewrote the annotation
    f = fakes(plan_for(gold, Difference("values", "$.replicaCount", "changed", 1, 2)), sites=[after_helm, after_helm])
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 0, result.output
    [(release, values)] = FakeReleases.calls
    assert release == "patroni" and values["replicaCount"] == 2 and values["role"] == "leader"
    assert [p[3] for p in f.cluster.patches] == ["12"]  # the version read after Helm
    assert "gold: helm release patroni now at revision 4" in result.stdout


def test_apply_keeps_the_startup_guard_the_spec_declares(fakes: Any, specs: dict[str, Spec]) -> None:
    # Helm upgrades with reset_values: only what the spec renders survives. The guard's policy is part of it.
    gold = specs["gold"]
    after_helm = state(gold, "leader", rv="12")
    fakes(plan_for(gold, Difference("values", "$.replicaCount", "changed", 1, 2)), sites=[after_helm, after_helm])
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 0, result.output
    [(_, values)] = FakeReleases.calls
    assert values["startupGuard"] == {"peerUnreachable": "wait", "unreachableGrace": 300}


def test_after_helm_the_config_is_recomputed_from_what_is_there_now(fakes: Any, specs: dict[str, Spec]) -> None:
    """A key set by hand (patronictl edit-config) between the plan and the write is kept, not overwritten by
    the plan's older picture of the annotation."""
    gold = specs["gold"]
    hand_set = {**dcs_config(gold), "ttl": 1, "synchronous_mode": True}
    after_helm = state(gold, "leader", config=hand_set, rv="13")
    f = fakes(plan_for(gold, Difference("values", "$.replicaCount", "changed", 1, 2)), sites=[after_helm, after_helm])
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 0, result.output
    [(_, _, patch, version)] = f.cluster.patches
    written = json.loads(patch["metadata"]["annotations"]["config"])
    assert version == "13"
    assert written["synchronous_mode"] is True  # kept: set by hand after the plan was read
    assert written["ttl"] == dcs_config(gold)["ttl"]  # declared keys win


def test_conflict_is_reported_never_retried(fakes: Any, specs: dict[str, Spec]) -> None:
    f = fakes(
        plan_for(specs["gold"], Difference("config", "$.ttl", "changed", 10, 30), live={"ttl": 10}), conflict=True
    )
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 1
    assert (
        "error: conflict: patroni-config on context gold changed after it was read (resourceVersion 7); "
        "the config annotation was not written" in result.stderr
    )
    assert "hint: someone else changed it meanwhile: run rolegen diff --env gold" in result.stderr
    assert "Traceback" not in result.output and f.cluster.patches == []


def test_waits_with_progress_then_times_out(fakes: Any, specs: dict[str, Spec]) -> None:
    golddr = specs["golddr"]
    fakes(plan_for(golddr, live_role="leader"), sites=[state(golddr, "leader")])
    result = apply("--env", "golddr", "--yes", "--timeout", "1")
    assert result.exit_code == 1
    assert "golddr: Patroni reports leader (waiting for standby-leader, 0s of 1s)" in result.stdout
    assert "error: golddr: Patroni did not report role standby-leader within 1s (live: leader)" in result.stderr


def test_wait_ends_when_patroni_reports_the_role(fakes: Any, specs: dict[str, Spec]) -> None:
    golddr = specs["golddr"]
    fakes(plan_for(golddr, live_role=None), sites=[state(golddr, None), state(golddr, "standby-leader")])
    result = apply("--env", "golddr", "--yes")
    assert result.exit_code == 0, result.output
    assert "golddr: Patroni reports no leader (waiting for standby-leader" in result.stdout
    assert "golddr: Patroni reports standby-leader (" in result.stdout


@pytest.fixture
def golddr_declared_leader(workdir: Path) -> Spec:
    for env, role in (("gold", "standby-leader"), ("golddr", "leader")):
        assert runner.invoke(app, ["render", "--env", env, "--role", role]).exit_code == 0
    return load_workspace(workdir / "environments").specs["golddr"]


def test_promotion_is_refused_while_the_peer_leads(fakes: Any, golddr_declared_leader: Spec) -> None:
    golddr = golddr_declared_leader
    gold = load_workspace(Path("environments")).specs["gold"]
    plan = plan_for(golddr, live_role="standby-leader", dcs_role="standby-leader", live={"standby_cluster": {}})
    f = fakes(plan, sites=[state(gold, "leader")])
    result = apply("--env", "golddr", "--yes")
    assert result.exit_code == 1
    assert result.stdout == ""  # refused before the plan is shown
    assert "error: refusing to make golddr leader: its peer gold leads (DCS config" in result.stderr
    assert "Patroni leader, member patroni-0" in result.stderr
    assert "hint: demote the peer first" in result.stderr
    assert f.reads == ["gold"] and f.cluster.patches == [] and FakeReleases.calls == []


def test_promotion_is_refused_while_the_peer_dcs_still_declares_leader(
    fakes: Any, golddr_declared_leader: Spec
) -> None:
    """A handover in progress: the peer's Patroni leads nobody right now, but its DCS config still says leader,
    so it may lead again any second."""
    gold = load_workspace(Path("environments")).specs["gold"]
    plan = plan_for(golddr_declared_leader, dcs_role="standby-leader", live={"standby_cluster": {}})
    peer = state(gold, None, config={"ttl": 30})  # no standby_cluster: DCS leader
    f = fakes(plan, sites=[peer])
    result = apply("--env", "golddr", "--yes")
    assert result.exit_code == 1
    assert "its peer gold leads (DCS config leader, Patroni no leader" in result.stderr
    assert f.cluster.patches == [] and FakeReleases.calls == []


def test_promotion_rechecks_the_peer_after_confirmation(fakes: Any, golddr_declared_leader: Spec) -> None:
    """The peer was a standby when the plan was shown; by the time the user said yes it had been promoted
    (another operator, a failover): the promotion is refused before anything is written."""
    gold = load_workspace(Path("environments")).specs["gold"]
    plan = plan_for(golddr_declared_leader, dcs_role="standby-leader", live={"standby_cluster": {}})
    f = fakes(plan, sites=[state(gold, "standby-leader", config={"standby_cluster": {"host": "x"}}),
                           state(gold, "leader")])
    result = apply("--env", "golddr", "--yes")
    assert result.exit_code == 1
    assert "refusing to make golddr leader: its peer gold leads" in result.stderr
    assert f.reads == ["gold", "gold"] and f.cluster.patches == []
    assert FakeStore.leases["golddr"].lease is None  # the lease was released


def test_promotion_is_refused_when_the_peer_cannot_be_read(
    fakes: Any, golddr_declared_leader: Spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_for(golddr_declared_leader, dcs_role="standby-leader", live={"standby_cluster": {}})
    f = fakes(plan)

    def unreachable(spec: Spec, cluster: Any) -> SiteState:
        raise ClusterUnreachable("cannot reach the cluster of context gold: connection refused")

    monkeypatch.setattr(apply_cmd, "read_site", unreachable)
    result = apply("--env", "golddr", "--yes")
    assert result.exit_code == 1
    assert "cannot read its peer gold to check it is not leader" in result.stderr
    assert f.cluster.patches == [] and FakeReleases.calls == []


def test_demotion_needs_no_peer_check(fakes: Any, specs: dict[str, Spec], golddr_declared_leader: Spec) -> None:
    gold = load_workspace(Path("environments")).specs["gold"]  # declared standby-leader now
    plan = plan_for(
        gold,
        Difference("config", "$.standby_cluster", "missing", None, {}),
        live_role="leader",
        dcs_role="leader",
        live={},
    )
    f = fakes(plan, sites=[state(gold, "standby-leader")])
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 0, result.output
    assert f.reads == ["gold"]  # only the wait read its own site

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
from rolegen.cluster.helm import ReleaseInfo
from rolegen.cluster.kubectl import ClusterUnreachable, Conflict
from rolegen.cluster.pair import SitePair
from rolegen.cluster.records import Records
from rolegen.cluster.site_diff import Difference, SitePlan
from rolegen.cluster.site_state import Member, SiteState
from rolegen.commands import apply as apply_cmd
from rolegen.offline.render import dcs_config
from rolegen.offline.spec import Spec
from rolegen.offline.workspace import load_workspace

runner = CliRunner()


def leader_lock(holder: str) -> dict[str, str]:
    """A fresh `<scope>-leader` lock held by `holder`: live roles count only for the lock holder."""
    return {"leader": holder, "renewTime": datetime.now(UTC).isoformat(), "ttl": "30"}


class FakeCluster:
    def __init__(self, conflicts: int = 0) -> None:
        self.name = "gold"
        self.conflicts = conflicts  # how many writes answer 409 before one goes through
        self.patches: list[tuple[str, str, dict[str, Any], str | None]] = []
        self.leases_at_write: dict[str, bool] = {}

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None) -> None:
        self.leases_at_write = {env: r.lease is not None for env, r in FakeStore.leases.items()}
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict("patch configmap patroni-config on context gold: changed by someone else")
        self.patches.append((kind, name, patch, resource_version))


class FakeStore:
    """rolegen.cluster.records.RecordStore in memory: the lease apply takes on both sites, without a cluster."""

    leases: ClassVar[dict[str, Records]] = {}
    unreachable: ClassVar[set[str]] = set()  # sites whose API refuses the operator

    def __init__(self, spec: Spec, cluster: Any) -> None:
        self.spec = spec

    def _reach(self) -> None:
        if self.spec.environment in FakeStore.unreachable:
            raise ClusterUnreachable(f"cannot reach the cluster of context {self.spec.environment}: connection refused")

    def read(self) -> Records:
        self._reach()
        return FakeStore.leases.get(self.spec.environment, Records())

    def ensure(self) -> Records:
        self._reach()
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

    def upgrade_install(self, name: str, values: dict[str, Any], config_map: str | None = None) -> ReleaseInfo:
        assert config_map == "patroni-config"  # a race on the DCS config annotation is retried, never forced
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
    clock = FakeClock()
    monkeypatch.setattr(apply_cmd, "time", clock)
    monkeypatch.setattr("rolegen.cluster.wait.time", clock)  # the one poll loop apply's role wait runs on


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, specs: dict[str, Spec]) -> Iterator[Any]:
    """install(plan, sites=..., conflicts=..., fresh=...) wires the fakes; returns what they recorded. `fresh`: the
    plan read again under the lease (default: the same as the one shown)."""
    FakeReleases.calls = []
    FakeStore.leases = {}
    FakeStore.unreachable = set()
    monkeypatch.setattr(apply_cmd, "Releases", FakeReleases)
    monkeypatch.setattr("rolegen.cluster.pair.RecordStore", FakeStore)

    def install(
        plan: SitePlan, sites: list[SiteState] | None = None, conflicts: int = 0, fresh: SitePlan | None = None
    ) -> Fakes:
        f = Fakes(FakeCluster(conflicts), sites or [state(specs[plan.environment], plan.declared_role)])
        plans = [plan, fresh or plan]

        def read_site(spec: Spec, cluster: Any) -> SiteState:
            f.reads.append(spec.environment)
            return f.sites.pop(0) if len(f.sites) > 1 else f.sites[0]

        monkeypatch.setattr(apply_cmd, "read_plan", lambda *a, **k: plans.pop(0) if len(plans) > 1 else plans[0])
        real_pair = apply_cmd.site_pair

        def site_pair(*args: Any, **kwargs: Any) -> SitePair:  # both sites' clients: the fake cluster
            pair = real_pair(*args, **kwargs)
            return dataclasses.replace(pair, clusters=dict.fromkeys(pair.clusters, f.cluster))

        monkeypatch.setattr(apply_cmd, "site_pair", site_pair)
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


def test_a_conflict_is_recomputed_from_a_fresh_read_keeping_what_was_set_meanwhile(
    fakes: Any, specs: dict[str, Spec]
) -> None:
    """Patroni writes other annotations of the same object (history): a 409 means read again and recompute,
    and a key set by hand in between is kept, not overwritten by the plan's picture."""
    gold = specs["gold"]
    meanwhile = state(gold, "leader", config={**dcs_config(gold), "ttl": 10, "failsafe_mode": True}, rv="9")
    f = fakes(plan_for(gold, Difference("config", "$.ttl", "changed", 10, 30), live={"ttl": 10}), conflicts=1,
              sites=[meanwhile])
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 0, result.output
    [(_, _, patch, version)] = f.cluster.patches
    written = json.loads(patch["metadata"]["annotations"]["config"])
    assert version == "9" and written["failsafe_mode"] is True and written["ttl"] == dcs_config(gold)["ttl"]


def test_a_conflict_on_every_attempt_is_reported(fakes: Any, specs: dict[str, Spec]) -> None:
    f = fakes(
        plan_for(specs["gold"], Difference("config", "$.ttl", "changed", 10, 30), live={"ttl": 10}), conflicts=99,
        sites=[state(specs["gold"], "leader", config={"ttl": 10}, rv="9")],
    )
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 1
    assert (
        "error: conflict: patroni-config on context gold kept changing while it was written (3 attempts, each "
        "from a fresh read); the config annotation was not written" in result.stderr
    )
    assert "hint: someone else is changing it: run rolegen diff --env gold" in result.stderr
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


def test_a_promotion_is_refused_and_names_the_role_verbs_helm_never_runs(
    fakes: Any, golddr_declared_leader: Spec
) -> None:
    """N1/N7: golddr's spec says leader, its DCS config standby, and its peer reads as a standby (no second-leader
    refusal). A values change ran a role-bearing Helm upgrade and a config write that promoted golddr without
    fence, LSN gate or unslot: now nothing runs, and the refusal names the role verbs."""
    gold = load_workspace(Path("environments")).specs["gold"]
    plan = plan_for(golddr_declared_leader, Difference("values", "$.replicaCount", "changed", 1, 2),
                    live_role="standby-leader", dcs_role="standby-leader", live={"standby_cluster": {"host": "x"}})
    f = fakes(plan, sites=[state(gold, "standby-leader", config={"standby_cluster": {"host": "y"}})])
    result = apply("--env", "golddr", "--yes")
    assert result.exit_code == 1
    assert result.stdout == ""  # refused before the plan is shown
    assert ("error: refusing to apply golddr: its spec declares leader, its live DCS config standby-leader; "
            "apply never changes a role") in result.stderr
    assert "hint: record the live roles first: rolegen render --env golddr --role standby-leader" in result.stderr
    assert ("to make golddr leader: rolegen switchover --to golddr (both sites answer) or rolegen failover --to "
            "golddr (the other site is lost)") in result.stderr
    assert f.cluster.patches == [] and FakeReleases.calls == [] and FakeStore.leases == {}


def test_a_demotion_is_refused_too(fakes: Any, golddr_declared_leader: Spec) -> None:
    """gold's spec says standby, its DCS config leader: apply alone would leave the pair without a leader (and
    the next apply of golddr promote it without a gate)."""
    gold = load_workspace(Path("environments")).specs["gold"]  # declared standby-leader now
    plan = plan_for(gold, Difference("config", "$.standby_cluster", "missing", None, {}), live_role="leader",
                    dcs_role="leader", live={})
    f = fakes(plan, sites=[state(gold, "leader", config={})])
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 1
    assert "refusing to apply gold: its spec declares standby-leader, its live DCS config leader" in result.stderr
    assert "hint: record the live roles first: rolegen render --env gold --role leader" in result.stderr
    assert "to make golddr leader: rolegen switchover --to golddr" in result.stderr
    assert f.cluster.patches == [] and FakeReleases.calls == []


def no_config(spec: Spec) -> SitePlan:
    """A site whose `<scope>-config` is gone: Helm re-creates it with the declared role."""
    return plan_for(spec, Difference("config", "$", "missing", None, {}), live_role=None, dcs_role=None,
                    live_config=None, config_resource_version=None)


def test_creating_the_config_as_leader_is_refused_while_the_peer_leads(
    fakes: Any, golddr_declared_leader: Spec
) -> None:
    gold = load_workspace(Path("environments")).specs["gold"]
    f = fakes(no_config(golddr_declared_leader), sites=[state(gold, "leader")])
    result = apply("--env", "golddr", "--yes")
    assert result.exit_code == 1
    assert result.stdout == ""  # refused before the plan is shown
    assert "error: refusing to make golddr leader: its peer gold leads (DCS config" in result.stderr
    assert "Patroni leader, member patroni-0" in result.stderr
    assert "hint: to move the leader: rolegen switchover --to golddr" in result.stderr
    assert f.reads == ["gold"] and f.cluster.patches == [] and FakeReleases.calls == []


def test_creating_the_config_as_leader_is_refused_when_the_peer_cannot_be_read(
    fakes: Any, golddr_declared_leader: Spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = fakes(no_config(golddr_declared_leader))

    def unreachable(spec: Spec, cluster: Any) -> SiteState:
        raise ClusterUnreachable("cannot reach the cluster of context gold: connection refused")

    monkeypatch.setattr(apply_cmd, "read_site", unreachable)
    result = apply("--env", "golddr", "--yes")
    assert result.exit_code == 1
    assert "cannot read its peer gold to check it is not leader" in result.stderr
    assert "hint: check the context of gold; if that site is lost: rolegen failover --to golddr" in result.stderr
    assert f.cluster.patches == [] and FakeReleases.calls == []


def test_the_plan_is_read_again_under_the_lease_and_a_moved_site_stops_apply(
    fakes: Any, specs: dict[str, Spec]
) -> None:
    """N1: golddr was promoted by a switchover while the user read the plan (a values change on the standby).
    The old plan would have run Helm and written standby_cluster back, demoting the new leader; the read under
    the lease sees the move and stops before anything is written."""
    golddr = specs["golddr"]
    shown = plan_for(golddr, Difference("values", "$.replicaCount", "changed", 1, 2))
    now = plan_for(golddr, Difference("values", "$.replicaCount", "changed", 1, 2), live_role="leader",
                   dcs_role="leader", live={"ttl": 30})
    f = fakes(shown, fresh=now, sites=[state(golddr, "leader", config={"ttl": 30})])
    result = apply("--env", "golddr", "--yes")
    assert result.exit_code == 1
    assert ("error: golddr changed since the plan was shown (DCS config role standby-leader -> leader; Patroni "
            "reports standby-leader -> leader); nothing was changed") in result.stderr
    assert "hint: review it and re-run rolegen apply --env golddr" in result.stderr
    assert f.cluster.patches == [] and FakeReleases.calls == []
    # released on both sites (a released lease keeps only its fencing token)
    assert all("holder" not in (r.lease or {}) for r in FakeStore.leases.values())
    assert set(FakeStore.leases) == {"gold", "golddr"}


def test_apply_leases_both_sites_and_refuses_when_the_peer_cannot_be_leased(
    fakes: Any, specs: dict[str, Spec]
) -> None:
    plan = plan_for(specs["gold"], Difference("config", "$.ttl", "changed", 10, 30), live={"ttl": 10})
    f = fakes(plan)
    assert apply("--env", "gold", "--yes").exit_code == 0
    assert f.cluster.leases_at_write == {"gold": True, "golddr": True}  # both held while writing

    f = fakes(plan)
    FakeStore.unreachable = {"golddr"}
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 1
    assert "error: refusing to apply gold: cannot take the role-change lease on both sites" in result.stderr
    assert "hint: check the contexts of gold and golddr, then re-run rolegen apply --env gold" in result.stderr
    assert f.cluster.patches == [] and "holder" not in (FakeStore.leases["gold"].lease or {})  # given back


def test_a_role_patroni_still_runs_is_written_back_not_refused(fakes: Any, specs: dict[str, Spec]) -> None:
    """A switchover that timed out against a paused gold (or a failover stopped at a hung Patroni) left gold's DCS
    config declaring standby while gold still runs as leader and its spec says leader: the next resume or restart
    would demote it with nobody promoted. apply writes the declared role back (the fix status names); that is
    no role change, since it is the role that runs."""
    gold = specs["gold"]
    fenced = {**dcs_config(gold), "standby_cluster": {"host": "x", "port": 5432}, "pause": True}
    plan = plan_for(gold, Difference("config", "$.standby_cluster", "changed", None, {}), live_role="leader",
                    dcs_role="standby-leader", live=fenced)
    golddr = specs["golddr"]
    # The peer read twice (before the plan is shown, again under the lease): a standby; then gold, still leading.
    f = fakes(plan, sites=[state(golddr, "standby-leader"), state(golddr, "standby-leader"), state(gold, "leader")])
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 0, result.output
    [(_, name, patch, _)] = f.cluster.patches
    written = json.loads(patch["metadata"]["annotations"]["config"])
    assert name == gold.config_map and "standby_cluster" not in written and written["pause"] is True


def test_writing_leader_back_is_refused_while_the_peer_leads(fakes: Any, specs: dict[str, Spec]) -> None:
    gold, golddr = specs["gold"], specs["golddr"]
    fenced = {**dcs_config(gold), "standby_cluster": {"host": "x", "port": 5432}}
    plan = plan_for(gold, Difference("config", "$.standby_cluster", "changed", None, {}), live_role="leader",
                    dcs_role="standby-leader", live=fenced)
    f = fakes(plan, sites=[state(golddr, "leader", config={"ttl": 30})])  # golddr was promoted meanwhile
    result = apply("--env", "gold", "--yes")
    assert result.exit_code == 1
    assert "refusing to make gold leader: its peer golddr leads" in result.stderr
    assert f.cluster.patches == []

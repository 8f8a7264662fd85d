"""CLI of the role-change verbs where no cluster is needed: runbooks, refusals, exit codes; the role-change lease
around a procedure over fake site APIs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster.kubectl import ClusterUnreachable, Conflict
from rolegen.cluster.lease import LeaseHeld
from rolegen.cluster.records import FENCE, LEASE, PROMOTION
from rolegen.commands import roles
from rolegen.procedures import failover, switchover
from rolegen.procedures.base import Pair, load_pair
from rolegen.procedures.switchover import SwitchoverResult

runner = CliRunner()


@pytest.mark.parametrize(
    ("verb", "to", "first"),
    [
        ("switchover", "golddr", "Switchover to golddr (planned, zero acknowledged writes lost):"),
        ("failover", "golddr", "Failover to golddr (unplanned: gold failed):"),
        ("failback", "gold", "Failback to gold:"),
    ],
)
def test_dry_run_prints_the_numbered_runbook_and_touches_nothing(workdir: Path, verb: str, to: str, first: str) -> None:
    result = runner.invoke(app, [verb, "--to", to, "--dry-run", "--kubeconfig", str(workdir / "missing")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == first
    numbered = [line for line in lines if line[:1].isdigit()]
    assert numbered[0] == "1. Preflight"
    assert [int(line.split(".")[0]) for line in numbered] == list(range(1, len(numbered) + 1))


def test_unknown_target_is_a_usage_error(workdir: Path) -> None:
    result = runner.invoke(app, ["switchover", "--to", "silver", "--dry-run"])
    assert result.exit_code == 2
    assert "unknown environment 'silver'" in result.stderr


def test_bad_failback_method_is_a_usage_error(workdir: Path) -> None:
    result = runner.invoke(app, ["failback", "--to", "gold", "--method", "magic", "--dry-run"])
    assert result.exit_code == 2


def test_unreachable_cluster_names_the_context(workdir: Path) -> None:
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: gold, context: {cluster: c, user: u}}, {name: golddr, context: {cluster: c, user: u}}]\n"
        "current-context: gold\n"
    )
    result = runner.invoke(app, ["switchover", "--to", "golddr", "--yes", "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 1
    assert "context golddr" in result.stderr or "context gold" in result.stderr
    assert "Traceback" not in result.output
    status = runner.invoke(app, ["status", "--kubeconfig", str(kubeconfig)])
    assert status.exit_code == 1  # a script or a monitor sees that something is wrong
    assert "UNREACHABLE" in status.stdout
    assert "NOT HEALTHY: gold unreachable" in status.stdout


def test_old_site_down_reaches_the_failover(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[roles.RoleOptions] = []

    def run_failover(directory: Path, opts: roles.RoleOptions, *_: object) -> roles.RoleChangeResult:
        seen.append(opts)
        return roles.RoleChangeResult("failover", opts.to)

    monkeypatch.setattr(roles, "run_failover", run_failover)
    assert "--old-site-down" in runner.invoke(app, ["failover", "--help"]).stdout
    result = runner.invoke(app, ["failover", "--to", "golddr", "--yes", "--old-site-down"])
    assert result.exit_code == 0, result.output
    assert [o.old_site_down for o in seen] == [True]


# -- the role-change lease around a procedure: ask first, lease after; both sites or refuse -------------------------
class Site:
    """One site's API with only the `<scope>-rolegen` ConfigMap, resourceVersion-checked; `up` False: unreachable."""

    def __init__(self, env: str) -> None:
        self.env, self.up, self.version, self.exists = env, True, 0, False
        self.annotations: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self.env

    def proxy_site(self) -> None:
        """A role verb opens an API proxy per site (SitePair.live): a site in memory has none, as a site whose
        client cannot be chosen; its calls stay these."""
        raise ClusterUnreachable("in memory: no API proxy")

    def session(self) -> None:
        return None

    def _answer(self) -> None:
        if not self.up:
            raise ClusterUnreachable(f"cannot reach the cluster of context {self.env}")

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        self._answer()
        if not self.exists:
            return None
        return {"metadata": {"name": name, "resourceVersion": str(self.version), "annotations": dict(self.annotations)}}

    def create(self, body: dict[str, Any]) -> None:
        self._answer()
        self.exists, self.version = True, self.version + 1

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None) -> None:
        self._answer()
        if resource_version is not None and resource_version != str(self.version):
            raise Conflict("changed by someone else since it was read")
        for key, value in patch["metadata"]["annotations"].items():
            if value is None:
                self.annotations.pop(key, None)
            else:
                self.annotations[key] = value
        self.version += 1

    def lease(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.annotations.get(LEASE, "{}"))
        return value

    def brief(self, seconds: float) -> Site:
        """The same API, its requests bounded (recorded: `bounded`)."""
        self.bounded = seconds
        return self


@pytest.fixture
def sites(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Site]:
    """golddr and gold as fake APIs; the procedures replaced by `procedure` below (what they do to the lease)."""
    fake = {"gold": Site("gold"), "golddr": Site("golddr")}

    def load(env_dir: Path, to: str, **kwargs: Any) -> Pair:
        pair = load_pair(env_dir, to, log=kwargs.get("log", print))
        pair.clusters = fake  # type: ignore[assignment]
        return pair

    monkeypatch.setattr(roles, "load_pair", load)
    return fake


def procedure(writes: list[str], site: str = "golddr") -> Callable[..., Any]:
    """A procedure that asks, then makes one guarded write (a record) on `site`, like the real ones."""

    def run(pair: Pair, *, confirm: Callable[[str], None], **_: Any) -> SwitchoverResult:
        confirm("Switch over?")
        spec = pair.to if pair.to.environment == site else pair.other
        pair.record(spec, PROMOTION, {"id": "x"})
        writes.append(site)
        return SwitchoverResult(pair.to.environment, pair.other.environment)

    return run


def test_the_lease_is_taken_after_the_answer_never_held_through_the_prompt(
    sites: dict[str, Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    monkeypatch.setattr(switchover, "run", procedure(writes))
    during: list[dict[str, Any]] = []

    def ask(question: str) -> bool:
        during.extend(sites[env].lease() for env in ("gold", "golddr"))
        return True

    roles.run_switchover(Path("environments"), roles.RoleOptions(to="golddr"), ask, lambda _: None)
    assert [lease.get("holder") for lease in during] == [None, None]  # an open prompt blocks nobody
    assert writes == ["golddr"]
    assert [sites[env].lease() for env in ("gold", "golddr")] == [{"token": 1}, {"token": 1}]  # taken, released


def test_a_run_whose_question_stayed_open_while_another_run_changed_roles_refuses_on_the_answer(
    sites: dict[str, Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Operator A's switchover prompt is open; operator B fails over meanwhile (takes the lease, writes, releases).
    A's yes refers to a state that no longer exists: refused, nothing written by A."""
    writes: list[str] = []
    monkeypatch.setattr(switchover, "run", procedure(writes))
    monkeypatch.setattr(failover, "run", procedure(writes))
    opts = roles.RoleOptions(to="golddr")

    def ask(question: str) -> bool:
        roles.run_failover(Path("environments"), opts, lambda _: True, lambda _: None)  # B, while A is asked
        return True

    with pytest.raises(LeaseHeld) as caught:
        roles.run_switchover(Path("environments"), opts, ask, lambda _: None)
    assert caught.value.message.startswith(
        "the lease on gold was taken and held by another rolegen run while this one waited for an answer")
    assert caught.value.hint is not None and "re-run the same command" in caught.value.hint
    assert writes == ["golddr"]  # B's write only


def test_a_failover_without_the_old_sites_api_writes_to_it_only_after_taking_its_lease(
    sites: dict[str, Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    sites["gold"].up = False
    writes: list[str] = []
    seen: dict[str, Any] = {}

    def run(pair: Pair, *, confirm: Callable[[str], None], **_: Any) -> SwitchoverResult:
        confirm("Fail over?")
        pair.record(pair.to, PROMOTION, {"id": "x"})
        seen["target"] = sites["golddr"].lease()
        with pytest.raises(LeaseHeld, match="refusing to write to gold: its role-change lease could not be taken"):
            pair.record(pair.other, FENCE, {"leader": "golddr"})
        sites["gold"].up = True  # its API answers again: the lease is taken first, then the write
        pair.record(pair.other, FENCE, {"leader": "golddr"})
        seen["old"] = sites["gold"].lease()
        writes.append("gold")
        return SwitchoverResult(pair.to.environment, pair.other.environment)

    monkeypatch.setattr(failover, "run", run)
    log: list[str] = []
    roles.run_failover(Path("environments"), roles.RoleOptions(to="golddr"), lambda _: True, log.append)
    assert seen["target"]["not_leased"] == ["gold"]  # others see that the old site's lease is not held
    assert seen["old"]["key"] == seen["target"]["key"] and writes == ["gold"]
    assert any("gold: lease taken" in line for line in log)


def test_the_guards_failover_asks_the_old_site_nothing_before_a_write_and_bounds_its_requests(
    sites: dict[str, Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rolegen guard`'s failover (evidence_timeout: the guards' request_timeout): a lost site whose route drops
    packets answers nothing within kubectl's 20 s, each time it is asked. Its role-change lease is asked only
    before a write to it (here a fence), and its requests last request_timeout at most."""
    asked: list[str] = []
    gold = sites["gold"]
    real_get = gold.get

    def get(kind: str, name: str) -> dict[str, Any] | None:
        asked.append(name)
        return real_get(kind, name)

    gold.get = get  # type: ignore[method-assign]
    seen: dict[str, Any] = {}

    def run(pair: Pair, *, confirm: Callable[[str], None], **_: Any) -> SwitchoverResult:
        seen["asked before the steps"] = list(asked)
        pair.record(pair.other, FENCE, {"leader": "golddr"})  # the fence-first write: its lease first
        seen["old"], seen["target"] = sites["gold"].lease(), sites["golddr"].lease()
        return SwitchoverResult(pair.to.environment, pair.other.environment)

    monkeypatch.setattr(failover, "run", run)
    log: list[str] = []
    opts = roles.RoleOptions(to="golddr", accept_data_loss=True, evidence_timeout=4.0)
    roles.run_failover(Path("environments"), opts, lambda _: True, log.append)
    assert seen["asked before the steps"] == []
    assert seen["old"]["key"] == seen["target"]["key"]  # taken before the write, by this run
    assert gold.bounded == 2.0 and not hasattr(sites["golddr"], "bounded")
    assert any("gold: its lease is taken before the first write to it, not now" in line for line in log)


def test_a_switchover_with_one_site_unreachable_refuses_before_asking(
    sites: dict[str, Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    sites["gold"].up = False
    asked: list[str] = []
    monkeypatch.setattr(switchover, "run", procedure([]))
    with pytest.raises(ClusterUnreachable) as raised:
        roles.run_switchover(Path("environments"), roles.RoleOptions(to="golddr"), lambda q: bool(asked.append(q)),
                             lambda _: None)
    assert asked == [] and sites["golddr"].lease().get("holder") is None
    # Whatever the call's own hint, a role verb's says what comes next: the same command (drill flaky-api: a
    # reset route ended a failover on the generic "check the kubeconfig context", and nothing named the re-run).
    assert raised.value.hint is not None and "re-running the same command starts from the live state" in \
        raised.value.hint


# -- -f json|yaml: one document on stdout for automation, the runbook's progress on stderr, never a prompt ---------
def test_dry_run_as_json_is_the_runbook_in_one_document(workdir: Path) -> None:
    result = runner.invoke(app, ["failback", "--to", "gold", "--dry-run", "-f", "json",
                                 "--kubeconfig", str(workdir / "missing")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["verb"], data["to"], data["dry_run"], data["outcome"]) == ("failback", "gold", True, None)
    assert data["runbook"].splitlines()[0] == "Failback to gold:"
    # The prediction needs both sites read: unreachable, it is unknown and says why; the runbook still prints.
    assert (data["prediction"]["rewind_bytes"], data["prediction"]["reseed_bytes"]) == (None, None)
    assert data["prediction"]["unknown"][0].startswith("the sites could not be read: ")


def test_a_failover_as_json_carries_the_fence_command_and_logs_to_stderr(
    sites: dict[str, Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    fence = "rolegen failover --to golddr --yes"

    def run(pair: Pair, *, confirm: Callable[[str], None], **_: Any) -> failover.FailoverResult:
        confirm("Fail over?")
        pair.log("[1/5] Preflight")
        return failover.FailoverResult("golddr", "gold", promoted=True, fence_command=fence,
                                       decision="promote-unreachable", timings={"promoted": 1.5})

    monkeypatch.setattr(failover, "run", run)
    result = runner.invoke(app, ["failover", "--to", "golddr", "--yes", "-f", "json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)["outcome"]  # stdout is the document alone
    assert (outcome["promoted"], outcome["fenced"], outcome["fence_command"]) == (True, False, fence)
    assert "[1/5] Preflight" in result.stderr
    as_yaml = runner.invoke(app, ["failover", "--to", "golddr", "--yes", "-f", "yaml"])
    assert as_yaml.exit_code == 0 and f"fence_command: {fence}" in as_yaml.stdout


def test_machine_output_never_prompts(sites: dict[str, Site], monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []
    monkeypatch.setattr(switchover, "run", procedure(writes))
    result = runner.invoke(app, ["switchover", "--to", "golddr", "-f", "json"], input="y\n")
    assert result.exit_code == 1
    assert "machine-readable output never prompts" in result.stderr and "hint: re-run with --yes" in result.stderr
    assert result.stdout == "" and writes == []
    assert [sites[env].lease().get("holder") for env in ("gold", "golddr")] == [None, None]

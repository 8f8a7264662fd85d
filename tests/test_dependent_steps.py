"""The applications around a role change (rolegen.procedures.dependent_steps), with the README's example in both
specs, the applications faked (tests/fake_dependents.py), the database's steps stubbed and the hooks run for real
(a script in the workspace): the old site's dependents are down before its demotion, the new site's up after the
promotion, the hooks at their phases with the sites named; a dependent that does not converge stops the role
change with what it left and the command that goes on; a rolled-back switchover brings the old site's back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tests.dependents_example import add_example
from tests.fake_dependents import FakeApps, FakeReleases
from tests.test_apply import FakeClock
from tests.test_failover import LEADER, Sites, site, target

from rolegen.cluster import dependents
from rolegen.cluster.records import Records
from rolegen.cluster.site_state import Member, SiteState
from rolegen.errors import RolegenError
from rolegen.offline.spec import Spec
from rolegen.procedures import failover, handover, switchover
from rolegen.procedures.base import load_pair

STANDBY = {"ttl": 30, "standby_cluster": {"host": "peer", "port": 5432}}
HOOK = """#!/bin/sh
echo "traffic $1: $ROLEGEN_VERB $ROLEGEN_PHASE site=$ROLEGEN_SITE role=$ROLEGEN_SITE_ROLE \
$ROLEGEN_OLD_LEADER->$ROLEGEN_NEW_LEADER ns=$ROLEGEN_NAMESPACE"
"""


def _state(env: str, role: str) -> SiteState:
    config = LEADER if role == "leader" else STANDBY
    return SiteState(env, config, "5", {"initialize": "7"}, {}, [Member(f"{env}-0", role, "running", 3, 1, None)],
                     leader_version="1", records=Records())


class Run:
    """One pair with the example; `events` holds, in order, every write (database and applications) and the hooks'
    output lines; gold leads, its applications up; golddr's down."""

    def __init__(self, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        add_example(workdir / "environments")
        hooks = workdir / "hooks"
        hooks.mkdir()
        (hooks / "traffic").write_text(HOOK)
        os.chmod(hooks / "traffic", 0o755)
        self.events: list[Any] = []
        self.pair = load_pair(workdir / "environments", "golddr", log=self.log)
        self.apps = {env: FakeApps(env) for env in ("gold", "golddr")}
        FakeReleases.apps = self.apps
        for env, app in self.apps.items():
            app.add("Deployment", "web", 3 if env == "gold" else 0)
            spec = self.spec(env)
            FakeReleases(app).upgrade_install("identity", spec.dependents[0].shape(spec.role))
            app.writes = self.events  # one list, in order, for both sites and the database
        self.events.clear()
        self.pair.clusters = dict(self.apps)  # type: ignore[arg-type]
        monkeypatch.setattr(dependents, "Releases", FakeReleases)
        monkeypatch.setattr("rolegen.cluster.wait.time", FakeClock())

    def spec(self, env: str) -> Spec:
        return self.pair.to if env == "golddr" else self.pair.other

    def log(self, line: str) -> None:
        if line.startswith("   | "):
            self.events.append(("hook", line[5:]))

    def db(self, what: str) -> None:
        self.events.append(("db", what, self.apps["gold"].pods[("Deployment", "web")],
                            self.apps["golddr"].pods[("Deployment", "web")]))


@pytest.fixture
def run(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    return Run(workdir, monkeypatch)


@pytest.fixture
def switching(run: Run, monkeypatch: pytest.MonkeyPatch) -> Run:
    """A switchover from its start (gold leads), the database's own steps stubbed to record themselves."""
    monkeypatch.setattr(run.pair, "read_both", lambda: (_state("golddr", "standby-leader"), _state("gold", "leader")))
    monkeypatch.setattr(run.pair, "write_role", lambda spec, role, state, **_: run.db(f"{spec.environment} {role}"))
    monkeypatch.setattr(handover, "check", lambda _: None)
    monkeypatch.setattr(handover, "_demote", lambda _: run.db("demote gold"))
    monkeypatch.setattr(handover, "_wait_for_gate", lambda _: run.db("gate"))
    monkeypatch.setattr(handover, "_verify_leads", lambda _: run.db("leads"))
    monkeypatch.setattr(handover, "_verify_follows", lambda _: run.db("follows"))
    monkeypatch.setattr(handover, "_record", lambda _: run.db("recorded"))
    return run


def test_a_switchover_quiesces_the_old_sites_applications_before_the_demotion_and_starts_the_new_ones_after(
    switching: Run,
) -> None:
    switchover.run(switching.pair, confirm=lambda _: None, timeout=1)
    assert [e for e in switching.events if e[0] != "scale" and e[0] != "helm"] == [
        ("hook", "traffic drain: switchover before_demote site=gold role=standby-leader gold->golddr ns=f088b1-prod"),
        ("db", "demote gold", 0, 0),  # gold's web has no Pod left when the demotion is written
        ("db", "gate", 0, 0),
        ("db", "golddr leader", 0, 0),
        ("db", "leads", 0, 0),
        ("hook", "traffic serve: switchover after_promote site=golddr role=leader gold->golddr ns=f088b1-prod"),
        ("db", "follows", 0, 3),  # golddr's web serves as soon as golddr leads, before gold is seen following
        ("db", "recorded", 0, 3),
    ]
    ordered = [e[:2] for e in switching.events if e[0] in ("scale", "helm", "db")]
    assert ordered.index(("helm", "identity")) < ordered.index(("db", "demote gold"))
    assert ordered[-5:] == [("db", "leads"), ("helm", "identity"), ("scale", "web"), ("db", "follows"),
                            ("db", "recorded")]
    assert switching.apps["golddr"].releases["identity"].values["replicaCount"] == 2
    assert switching.apps["gold"].releases["identity"].values["replicaCount"] == 0


def test_a_dependent_that_does_not_go_down_stops_the_switchover_before_the_demotion(switching: Run) -> None:
    switching.apps["gold"].lingering.add("web")  # its Pods never go
    with pytest.raises(RolegenError) as caught:
        switchover.run(switching.pair, confirm=lambda _: None, timeout=1)
    assert caught.value.message.startswith("gold's dependent web did not reach its standby-leader shape within 180s")
    assert caught.value.message.endswith("(identity did); nothing was demoted: gold still leads")
    assert caught.value.hint == ("fix it (rolegen status shows the dependents), then re-run rolegen switchover --to "
                                 "golddr; or give gold's dependents back their leader shape: rolegen apply --env gold")
    assert not any(e[0] == "db" for e in switching.events)


def test_a_dependent_that_does_not_come_up_stops_before_the_roles_are_recorded(switching: Run) -> None:
    switching.apps["golddr"].stuck.add("web")
    with pytest.raises(RolegenError) as caught:
        switchover.run(switching.pair, confirm=lambda _: None, timeout=1)
    assert caught.value.message == (
        "golddr's dependent web did not reach its leader shape within 180s (Deployment web: 0/3 ready, 3 updated, "
        "3 running) (identity did); golddr leads (its promotion verified); the roles are not recorded yet")
    assert caught.value.hint is not None and "re-run rolegen switchover --to golddr: it resumes after the promotion" \
        in caught.value.hint
    assert not any(e[0] == "db" and e[1] in ("follows", "recorded") for e in switching.events) and not any(
        e[0] == "hook" and "after_promote" in e[1] for e in switching.events)


def test_a_rolled_back_switchover_brings_the_old_sites_applications_and_traffic_back(
    switching: Run, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def gate_not_reached(run: handover.Handover) -> None:
        handover._roll_back(run.pair, "golddr did not replay gold's final LSN within 1s", "gate not reached", "retry")

    monkeypatch.setattr(handover, "_wait_for_gate", gate_not_reached)
    with pytest.raises(RolegenError, match=r"gold was promoted back$"):
        switchover.run(switching.pair, confirm=lambda _: None, timeout=1)
    assert switching.apps["gold"].pods[("Deployment", "web")] == 3
    assert switching.apps["gold"].releases["identity"].values["replicaCount"] == 2
    hooks = [e[1] for e in switching.events if e[0] == "hook"]
    assert hooks[-1] == "traffic serve: rollback after_promote site=gold role=leader golddr->gold ns=f088b1-prod"
    assert switching.apps["golddr"].pods[("Deployment", "web")] == 0  # never brought up


def test_a_failing_before_demote_hook_changes_nothing(switching: Run, workdir: Path) -> None:
    (workdir / "hooks/traffic").write_text("#!/bin/sh\necho 'load balancer API: 503'\nexit 3\n")
    with pytest.raises(RolegenError) as caught:
        switchover.run(switching.pair, confirm=lambda _: None, timeout=1)
    assert caught.value.message == ("gold's before_demote hook exited 3 (hooks/traffic drain): load balancer API: "
                                    "503; nothing was changed")
    assert [e[0] for e in switching.events] == ["hook"]


def test_a_failing_after_promote_hook_is_a_warning_and_the_switchover_completes(switching: Run, workdir: Path) -> None:
    script = workdir / "hooks/traffic"
    script.write_text('#!/bin/sh\n[ "$1" = serve ] && exit 1\nexit 0\n')
    lines: list[str] = []
    switching.pair.log = lines.append
    switchover.run(switching.pair, confirm=lambda _: None, timeout=1)
    assert ("db", "recorded", 0, 3) in switching.events
    assert "   warning: golddr's after_promote hook exited 1 (hooks/traffic serve); the switchover goes on: run it " \
        "by hand once it can work" in lines


def test_a_failover_quiesces_an_answering_old_site_before_its_fence_and_starts_the_new_one_after_the_promotion(
    run: Run, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(failover, "record_roles", lambda *a, **k: run.db("recorded"))
    sites = Sites(run.pair, [target()], [site("gold", [], config=LEADER)])  # gold answers, its members are gone
    sites.writes = run.events  # type: ignore[assignment]
    assert failover.run(run.pair, confirm=lambda _: None, timeout=0.3).promoted
    writes = [e[:2] for e in run.events if e[0] != "hook"]
    assert writes.index(("scale", "web")) < writes.index(("gold", "fence"))
    assert writes[-3:] == [("helm", "identity"), ("scale", "web"), ("db", "recorded")]
    hooks = [e[1].split(":")[1].split(" site")[0].strip() for e in run.events if e[0] == "hook"]
    assert hooks == ["failover before_demote", "failover after_promote"]


def test_a_failover_with_the_old_sites_api_silent_says_its_dependents_are_left(
    run: Run, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.test_failover import unreachable

    monkeypatch.setattr(failover, "record_roles", lambda *a, **k: None)
    lines: list[str] = []
    run.pair.log = lines.append
    Sites(run.pair, [target()], [unreachable()])
    assert failover.run(run.pair, confirm=lambda _: None, timeout=0.3).promoted
    assert "   gold's dependents were not quiesced; once its API answers: rolegen apply --env gold (its spec now " \
        "declares standby-leader)" in lines
    assert run.apps["golddr"].pods[("Deployment", "web")] == 3


def test_every_verbs_runbook_orders_the_applications_around_the_database(run: Run, workdir: Path) -> None:
    """The runbooks `--dry-run` prints come from the steps run() executes: the orders a user reads."""
    from rolegen.procedures import failback

    def titles(text: str) -> list[str]:
        return [line.split(". ", 1)[1] for line in text.splitlines() if line[:1].isdigit()]

    over = titles(switchover.dry_run(run.pair))
    assert over[1:4] == ["Run gold's before_demote hook", "Quiesce gold's dependents", "Demote gold"]
    assert over[-5:] == ["Verify golddr leads", "Bring up golddr's dependents", "Run golddr's after_promote hook",
                         "Verify gold follows", "Record the new roles"]
    fail = titles(failover.dry_run(run.pair))
    assert fail.index("Quiesce gold's dependents") < fail.index("Fence gold first (its API answers)")
    assert fail[-3:] == ["Bring up golddr's dependents", "Run golddr's after_promote hook", "Record the new roles"]
    back = titles(failback.dry_run(load_pair(workdir / "environments", "gold")))
    assert back[1:3] == ["Fence gold", "Quiesce gold's dependents"]  # the returning site, before its repair
    assert back[6:9] == ["Run golddr's before_demote hook", "Quiesce golddr's dependents", "Demote golddr"]
    assert back[-5:] == ["Verify gold leads", "Bring up gold's dependents", "Run gold's after_promote hook",
                         "Verify golddr follows", "Record the new roles"]

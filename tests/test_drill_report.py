"""The drill report's pure parts: timeline parsing, run outcomes, PASS/FAIL reasons, both renderings."""

from __future__ import annotations

import json

import pytest

from rolegen_lab.drills.report import (
    Report,
    RunRecord,
    concurrent_problem,
    duplicate_timelines,
    next_command,
    split_losses,
    timelines_selected,
)
from rolegen_lab.drills.scenarios import SCENARIOS
from rolegen_lab.drills.steps import Cast, Expect, ExpectedEnd, Scenario, Write, resolve

LOG = """\
2026-11-26 14:22:36,970 INFO: promoted self to leader because I had the session lock
2026-11-26 14:22:36.974 UTC [16349] LOG:  selected new timeline ID: 2
2026-11-26 14:22:39.480 UTC [16452] LOG:  fetching timeline history file for timeline 3 from primary server
2026-11-26 14:22:39.591 UTC [15987] LOG:  new target timeline is 3
2026-11-26 14:30:01.002 UTC [17001] LOG:  selected new timeline ID: 4
"""


def passing_report(**changes: object) -> Report:
    report = Report("switchover", "test", acknowledged=100, converged=True, final_leader="gold",
                    timelines={"gold": [("patroni-0", 3)], "golddr": [("patroni-0", 2)]})
    for key, value in changes.items():
        setattr(report, key, value)
    return report


def evaluated(report: Report, expect: Expect | None = None) -> Report:
    """Judged as the runner judges it: against the scenario resolved for the lab (gold leading at its start)."""
    report.evaluate(resolve(Scenario("s", "test", (Write(1),), expect or Expect()), Cast("gold", "golddr")), [])
    return report


def test_only_the_selecting_server_s_line_counts_as_a_timeline_choice() -> None:
    # A follower fetching a history file or switching its target timeline chose nothing.
    assert timelines_selected(LOG) == [2, 4]
    assert timelines_selected("no promotion here\n") == []


def test_a_timeline_number_chosen_on_both_sites_is_a_duplicate_but_not_within_one_site() -> None:
    assert duplicate_timelines({"gold": [("patroni-0", 3), ("patroni-1", 4)], "golddr": [("patroni-0", 3)]}) == [3]
    assert duplicate_timelines({"gold": [("patroni-0", 3)], "golddr": [("patroni-0", 2), ("patroni-0", 4)]}) == []


def test_clean_observations_pass() -> None:
    report = evaluated(passing_report())
    assert report.passed and report.reasons == []
    assert report.as_dict()["verdict"] == "PASS"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"lost": [7, 8]}, "2 acknowledged write(s) lost"),
        ({"timelines": {"gold": [("patroni-1", 5)], "golddr": [("patroni-0", 5)]}}, "[5] selected on both sites"),
        ({"dual_primaries": [(4.2, ["gold/patroni-0", "golddr/patroni-0"])]}, "two writable primaries observed"),
        ({"converged": False}, "not converged"),
        ({"final_leader": "golddr"}, "final leader golddr, expected gold"),
        ({"acknowledged": 0}, "nothing was measured"),
        ({"problems": ["step 3 (Converge): timed out"]}, "step 3 (Converge): timed out"),
    ],
)
def test_each_broken_promise_fails_the_drill_with_its_reason(changes: dict[str, object], reason: str) -> None:
    report = evaluated(passing_report(**changes))
    assert not report.passed
    assert any(reason in r for r in report.reasons), report.reasons
    assert report.lines()[-len(report.reasons) - 1].startswith("FAIL")


def test_losses_inside_an_allowed_window_are_reported_apart_and_do_not_fail() -> None:
    report = evaluated(passing_report(lost_in_window=[1, 2, 3], loss_window=(1.0, 2.5)),
                       Expect(loss_window=("fault", "promoted")))
    assert report.passed
    data = report.as_dict()
    assert (data["lost"], data["lost_in_window"], data["loss_window_s"]) == (0, 3, [1.0, 2.5])
    assert any("+3 inside the loss window" in line for line in report.lines())


def test_a_lost_write_says_when_it_was_acknowledged() -> None:
    # Whether a loss is the procedure's or the fault's depends on when the write was acknowledged.
    report = evaluated(passing_report(lost=[7], lost_at=[1.934]))
    assert not report.passed
    assert "lost acknowledged at  1.93 s" in report.lines()
    assert report.as_dict()["lost_acknowledged_at_s"] == [1.934]


def run(expect: ExpectedEnd, exit_code: int | None, *tail: str, killed: float | None = None) -> RunRecord:
    return RunRecord("switchover", "golddr", expect, 0.0, exit_code=exit_code, killed_after=killed, tail=list(tail))


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (run("ok", 0, "done"), None),
        (run("ok", 1, "error: timed out"), "failed (exit 1): error: timed out"),
        (run("error", 1, "error: gate not reached", "hint: rolegen status"), None),
        (run("error", 0, "done"), "must make it refuse or roll back"),
        (run("safe", 1, "error: boom"), "no hint naming the next command"),
        (run("safe", 0, "done"), None),
        (run("lease-held", 1, "error: lease held by x until T", "hint: wait"), None),
        (run("ok", None, killed=0.7), None),  # SIGKILLed on purpose: judged by the re-run
    ],
)
def test_run_outcomes(record: RunRecord, problem: str | None) -> None:
    found = record.problem()
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_concurrent_runs_need_exactly_one_winner_and_a_loser_naming_the_lease_holder() -> None:
    winner = run("ok", 0, "done")
    assert concurrent_problem([winner, run("ok", 1, "error: role-change lease held by host-1 until 14:00:00")]) is None
    assert "2 of 2" in (concurrent_problem([winner, run("ok", 0, "done")]) or "")
    assert "did not name the lease holder" in (concurrent_problem([winner, run("ok", 1, "error: conflict")]) or "")


def test_json_rendering_is_deterministic_and_complete() -> None:
    report = evaluated(passing_report(runs=[run("ok", 0, "done")], events=[(0.5, "lab kill site=gold")]))
    data = report.as_dict()
    assert json.dumps(data, sort_keys=True) == json.dumps(report.as_dict(), sort_keys=True)
    for key in ("acknowledged", "lost", "lost_in_window", "unknown", "longest_write_gap_s", "timelines_selected",
                "duplicate_timelines", "two_writable_primaries", "final_roles", "converged", "convergence_s",
                "runs", "verdict", "reasons"):
        assert key in data
    assert data["runs"][0]["exit_code"] == 0


def test_every_scenario_the_issue_names_exists() -> None:
    assert {"switchover", "crash-restart-failover", "site-loss-failover", "tunnel-cut", "hung-patroni",
            "killed-rolegen", "concurrent-rolegen"} <= set(SCENARIOS)


@pytest.mark.parametrize(
    ("record", "command"),
    [
        (run("safe", 1, "error: gate not reached", "hint: check the tunnel; then re-run rolegen failover --to golddr. "
             "To promote now and lose what was not replayed: add --accept-data-loss"), ("failover", "golddr")),
        (run("safe", 1, "error: a member may still accept writes", "hint: stop that member, then re-run the same "
             "rolegen command: it resumes"), ("switchover", "golddr")),
        (run("safe", 1, "error: boom", "hint: rolegen status"), None),
        (run("ok", 0, "done", "hint: rolegen failback --to gold"), None),  # it succeeded: nothing to follow
        (run("ok", None, "[2/6] Demote gold", killed=1.5), None),
    ],
)
def test_the_next_command_is_read_from_a_failed_run_s_hint(record: RunRecord, command: tuple[str, str] | None) -> None:
    assert next_command(record) == command


def test_losses_split_by_the_window_they_were_acknowledged_in() -> None:
    acknowledged, at = [1, 2, 3, 4, 5], [1.0, 2.0, 3.0, 4.0, 5.0]
    assert split_losses(acknowledged, at, {2, 3, 5}, (1.5, 3.5)) == ([5], [2, 3])
    assert split_losses(acknowledged, at, {2, 3, 5}, None) == ([2, 3, 5], [])
    assert split_losses(acknowledged, at, set(), (0.0, 9.0)) == ([], [])


def test_a_site_loss_excuses_only_what_the_lost_site_acknowledged() -> None:
    # Inside the window, gold's unshipped commits may die with gold; golddr's, once it leads, never may.
    acknowledged, at = [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0]
    by = ["gold", "gold", "golddr", "golddr"]
    assert split_losses(acknowledged, at, {2, 3}, (1.5, 3.5), by, "gold") == ([3], [2])
    assert split_losses(acknowledged, at, {2, 3}, (1.5, 3.5), by, None) == ([], [2, 3])


def test_apply_and_reseed_runs_are_named_with_env_as_users_type_them() -> None:
    from rolegen_lab.drills.report import RunRecord

    run = RunRecord("apply", "golddr", "ok", 1.0, exit_code=1, tail=["error: refused"])
    assert run.command == "rolegen apply --env golddr"
    assert run.problem() == "rolegen apply --env golddr failed (exit 1): error: refused"
    assert RunRecord("failover", "golddr", "ok", 0.0).command == "rolegen failover --to golddr"

"""What the chaos runner reads from rolegen's output: the command a refusal's hint names (as a person following
it types it, never with a data-loss option), and `rolegen status -f json` among other lines."""

from __future__ import annotations

from rolegen_lab.drills.chaos.checker import RunSeen
from rolegen_lab.drills.chaos.runner import hinted, parse_json, pod_to_delete


def refused(*lines: str, argv: tuple[str, ...] = ("failover", "--to", "golddr")) -> RunSeen:
    return RunSeen(argv, 0, 1, 1, output=lines)


def test_the_hint_names_the_next_command() -> None:
    run = refused("error: gold is seen leading", "hint: for a planned move use rolegen switchover --to golddr")
    assert hinted(run) == ["switchover", "--to", "golddr"]
    assert hinted(refused("error: x", "hint: rolegen reseed --env golddr --yes")) == ["reseed", "--env", "golddr"]


def test_a_hint_offering_data_loss_is_followed_without_it() -> None:
    run = refused("error: golddr did not catch up", "hint: re-run, or rolegen failover --to golddr --accept-data-loss")
    assert hinted(run) == ["failover", "--to", "golddr"]
    again = refused("error: lease held", "hint: re-run once it ended",
                    argv=("failover", "--to", "golddr", "--accept-data-loss"))
    assert hinted(again) == ["failover", "--to", "golddr"]


def test_success_a_kill_or_no_hint_gives_nothing_to_follow() -> None:
    done = RunSeen(("switchover", "--to", "gold"), 0, 1, 0, output=("hint: rolegen failback --to gold",))
    assert hinted(done) is None
    assert hinted(RunSeen(("switchover", "--to", "gold"), 0, 1, None, killed=True)) is None
    assert hinted(refused("error: something broke")) is None


def test_status_json_is_found_after_other_lines() -> None:
    assert parse_json(("kubectl 1.34", '{"healthy": true,', ' "sites": []}')) == {"healthy": True, "sites": []}
    assert parse_json(("error: no json",)) is None


def test_a_hint_to_delete_a_pod_first_names_the_site_and_the_pod() -> None:
    """The failover's refusal when the target's lock holder lags one of its members: the on-call person deletes
    the holder's Pod as the hint says (the lab's contexts are its sites), then goes on."""
    run = refused("error: promoting gold would discard WAL its own members hold (...); nothing was promoted",
                  "hint: make the member holding the most gold's standby leader: delete patroni-1's Pod (kubectl "
                  "--context gold -n f088b1-prod delete pod patroni-1; Patroni's leader race then picks the member "
                  "holding the most), wait until rolegen status shows it, then re-run rolegen failover --to gold. "
                  "To promote patroni-1 now and lose that WAL: add --accept-data-loss",
                  argv=("failover", "--to", "gold"))
    assert pod_to_delete(run) == ("gold", "patroni-1")
    assert hinted(run) == ["failover", "--to", "gold"]
    assert pod_to_delete(refused("error: x", "hint: rolegen status")) is None
    assert pod_to_delete(RunSeen(("failover", "--to", "gold"), 0, 1, 0, output=run.output)) is None  # it succeeded

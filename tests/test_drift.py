from __future__ import annotations

from rolegen.drift import REDACTED, Difference, compare, keep_extra

DECLARED = {"ttl": 30, "postgresql": {"parameters": {"max_connections": 100}}, "standby_cluster": {"port": 5432}}


def test_no_difference_when_equal_even_if_key_order_differs() -> None:
    live = {"standby_cluster": {"port": 5432}, "postgresql": {"parameters": {"max_connections": 100}}, "ttl": 30}
    assert compare("config", live, DECLARED) == []


def test_changed_missing_and_extra_paths() -> None:
    live = {"ttl": 10, "postgresql": {"parameters": {"max_connections": 100, "work_mem": "8MB"}}}
    found = compare("config", live, DECLARED, extra_is_drift=False)
    assert found == [
        Difference("config", "$.postgresql.parameters.work_mem", "extra", "8MB", None, drift=False),
        Difference("config", "$.standby_cluster", "missing", None, {"port": 5432}),
        Difference("config", "$.ttl", "changed", 10, 30),
    ]


def test_live_standby_cluster_on_a_declared_leader_is_drift_not_an_extra_key() -> None:
    declared = {"ttl": 30}
    [diff] = compare("config", {"ttl": 30, "standby_cluster": {"host": "peer"}}, declared, extra_is_drift=False)
    assert (diff.path, diff.kind, diff.drift) == ("$.standby_cluster", "extra", True)


def test_secret_like_values_are_redacted() -> None:
    [diff] = compare("values", {"auth": {"password": "old"}}, {"auth": {"password": "new"}})
    assert (diff.live, diff.declared) == (REDACTED, REDACTED)


def test_keep_extra_keeps_hand_set_keys_but_not_a_stale_standby_cluster() -> None:
    live = {"ttl": 10, "standby_cluster": {"host": "x"}, "postgresql": {"parameters": {"work_mem": "8MB"}}}
    declared = {"ttl": 30, "postgresql": {"parameters": {"max_connections": 100}}}
    assert keep_extra(live, declared) == {
        "ttl": 30,
        "postgresql": {"parameters": {"max_connections": 100, "work_mem": "8MB"}},
    }

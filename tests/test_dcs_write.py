"""The one guarded write of the DCS `config` annotation (rolegen.cluster.dcs_write), on a fake cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rolegen.cluster.dcs_write import Snapshot, write_config
from rolegen.cluster.kubectl import Conflict
from rolegen.errors import RolegenError

DECLARED = {"ttl": 30, "postgresql": {"parameters": {"max_connections": 100}}}


class FakeCluster:
    name = "gold"

    def __init__(self, conflicts: int = 0) -> None:
        self.conflicts = conflicts
        self.writes: list[tuple[dict[str, Any], str | None]] = []

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict("changed by someone else")
        self.writes.append((json.loads(patch["metadata"]["annotations"]["config"]), resource_version))


def rereads(*snapshots: Snapshot) -> Any:
    queue = list(snapshots)
    return lambda: queue.pop(0)


def test_hand_set_keys_are_kept_and_declared_keys_win() -> None:
    cluster = FakeCluster()
    live = {"ttl": 10, "pause": True, "postgresql": {"parameters": {"work_mem": "64MB"}}}
    assert write_config(cluster, "patroni-config", DECLARED, (live, "5"), rereads(), role_change=False)
    [(written, version)] = cluster.writes
    assert version == "5"
    assert written == {"ttl": 30, "pause": True, "postgresql": {"parameters": {"max_connections": 100,
                                                                              "work_mem": "64MB"}}}


def test_a_conflict_recomputes_from_the_fresh_read_never_from_the_old_one() -> None:
    cluster = FakeCluster(conflicts=1)
    fresh = ({"ttl": 10, "failsafe_mode": True}, "6")
    assert write_config(cluster, "patroni-config", DECLARED, ({"ttl": 10}, "5"), rereads(fresh))
    [(written, version)] = cluster.writes
    assert version == "6" and written["failsafe_mode"] is True


def test_a_write_that_must_not_change_the_role_refuses_when_a_reread_shows_another_role() -> None:
    """Someone promoted the site (standby_cluster removed) between apply's read and its write: apply, which
    declares standby, must not demote it again."""
    cluster = FakeCluster(conflicts=1)
    standby = {**DECLARED, "standby_cluster": {"host": "peer", "port": 5432}}
    with pytest.raises(RolegenError, match="the live DCS config declares leader, the write would make it "
                                           "standby-leader; nothing was written"):
        write_config(cluster, "patroni-config", standby, ({"ttl": 10, "standby_cluster": {"host": "peer"}}, "5"),
                     rereads(({"ttl": 10}, "6")), role_change=False)
    assert cluster.writes == []


def test_an_identical_config_is_not_written_and_a_missing_object_is_an_error() -> None:
    cluster = FakeCluster()
    assert not write_config(cluster, "patroni-config", DECLARED, (dict(DECLARED), "5"), rereads())
    with pytest.raises(RolegenError, match="ConfigMap patroni-config does not exist on context gold"):
        write_config(cluster, "patroni-config", DECLARED, (None, None), rereads())
    assert cluster.writes == []


class CreatingCluster(FakeCluster):
    """A cluster where the ConfigMap is missing at first and someone else creates it before our create lands."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[dict[str, Any]] = []
        self.patches: list[dict[str, Any]] = []

    def create(self, obj: dict[str, Any]) -> None:
        from rolegen.cluster.kubectl import AlreadyExists

        if not self.created:
            self.created.append(obj)
            raise AlreadyExists("created meanwhile")
        raise AssertionError("created twice")

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None) -> None:
        self.patches.append(patch)
        super().merge_patch(kind, name, patch, resource_version)


def test_a_reseed_write_creates_a_missing_config_map_and_clears_patronis_memory_in_the_same_write() -> None:
    """A wipe's write: created when missing; when someone created it meanwhile, re-read and patched, clearing
    `history`/`initialize` even though the config itself is already the declared one."""
    from rolegen.cluster.dcs_write import config_map_object

    cluster = CreatingCluster()

    class Spec:
        config_map, namespace, scope, labels = "patroni-config", "db", "patroni", {"app": "db"}

    written = write_config(cluster, "patroni-config", DECLARED, (None, None), rereads((DECLARED, "7")),
                           clear=("history", "initialize"),
                           create=lambda text: config_map_object(Spec, text))  # type: ignore[arg-type]
    assert written
    [first] = cluster.created
    assert json.loads(first["metadata"]["annotations"]["config"]) == DECLARED
    assert first["metadata"]["labels"] == {"app": "db", "cluster-name": "patroni"}
    [patch] = cluster.patches
    assert {k: patch["metadata"]["annotations"][k] for k in ("history", "initialize")} == dict.fromkeys(
        ("history", "initialize"))
    assert cluster.writes == [(DECLARED, "7")]

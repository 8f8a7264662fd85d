"""The environments directory as a whole: choosing environments, naming specs, loading every spec at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolegen.errors import UsageError, ValidationFailed
from rolegen.offline.workspace import load_workspace


def test_select_needs_exactly_one_way_to_choose(workdir: Path) -> None:
    ws = load_workspace(workdir / "environments")
    assert ws.select([], True) == ["gold", "golddr"]
    assert ws.select(["golddr", "gold", "golddr"], False) == ["gold", "golddr"]
    with pytest.raises(UsageError, match="--env and --all are mutually exclusive"):
        ws.select(["gold"], True)
    with pytest.raises(UsageError, match="name an environment with --env ENV, or use --all"):
        ws.select([], False)


def test_an_unknown_environment_names_the_known_ones_and_their_files(workdir: Path) -> None:
    ws = load_workspace(workdir / "environments")
    with pytest.raises(UsageError) as caught:
        ws.select(["silver", "gold"], False)
    assert caught.value.message == "unknown environment(s): silver"
    assert caught.value.hint == "known: gold, golddr (files environments/<env>.yaml)"
    assert caught.value.exit_code == 2


def test_generated_headers_name_a_spec_the_same_from_any_directory(workdir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ws = load_workspace(workdir / "environments")
    monkeypatch.chdir(workdir / "environments" / "generated")
    assert ws.spec_ref("gold") == "environments/gold.yaml"


def test_every_error_of_every_spec_at_once(workdir: Path) -> None:
    env_dir = workdir / "environments"
    for name in ("gold", "golddr"):
        path = env_dir / f"{name}.yaml"
        path.write_text(path.read_text().replace("scope: patroni", "scope: Not_A_Label"))
    with pytest.raises(ValidationFailed) as caught:
        load_workspace(env_dir)
    files = {p.file for p in caught.value.errors}
    assert files == {"environments/gold.yaml", "environments/golddr.yaml"}
    assert all(p.path == "$.patroni.scope" for p in caught.value.errors)


def test_an_override_is_validated_without_being_written(workdir: Path) -> None:
    path = workdir / "environments" / "golddr.yaml"
    before = path.read_text()
    with pytest.raises(ValidationFailed) as caught:  # golddr leader too: the pair rule
        load_workspace(path.parent, {path: before.replace("role: standby-leader", "role: leader")})
    assert any(p.path == "$.role" and "both leader" in p.message for p in caught.value.errors)
    assert path.read_text() == before
    ws = load_workspace(path.parent, {path: before.replace("role: standby-leader", "role: standby-leader  # kept")})
    assert ws.specs["golddr"].role == "standby-leader"

from __future__ import annotations

import pytest
import typer

from rolegen import prompt
from rolegen.errors import RolegenError


def test_yes_proceeds_without_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: pytest.fail("must not prompt"))
    assert prompt.confirm("Apply?", yes=True) is True
    assert prompt.confirm("Apply?", yes=True, machine_output=True) is True


@pytest.mark.parametrize("machine_output", [False, True])
def test_without_a_terminal_or_in_machine_mode_it_fails_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, machine_output: bool
) -> None:
    monkeypatch.setattr(prompt, "_interactive", lambda: machine_output)  # a TTY never overrides -f json
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: pytest.fail("must not prompt"))
    with pytest.raises(RolegenError) as info:
        prompt.confirm("Apply?", yes=False, machine_output=machine_output)
    assert info.value.hint == "re-run with --yes"


@pytest.mark.parametrize("answer", [True, False])
def test_a_terminal_is_asked_and_no_is_the_default(monkeypatch: pytest.MonkeyPatch, answer: bool) -> None:
    asked: list[tuple[str, bool]] = []

    def fake_confirm(question: str, default: bool) -> bool:
        asked.append((question, default))
        return answer

    monkeypatch.setattr(prompt, "_interactive", lambda: True)
    monkeypatch.setattr(typer, "confirm", fake_confirm)
    assert prompt.confirm("Apply?", yes=False) is answer
    assert asked == [("Apply?", False)]

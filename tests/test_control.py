"""A member's pg_control report as rolegen reads it from its Pod (rolegen.cluster.control)."""

from __future__ import annotations

import json

import pytest

from rolegen.cluster.control import Control


def test_a_published_report_is_read_with_its_text() -> None:
    text = json.dumps({"state": "shut down", "checkpoint": "1/A0000028", "timeline": 4, "patroni": "stopping",
                       "system": "7451"})
    control = Control.from_annotations({"rolegen.io/control": text})
    assert control == Control("shut down", (1 << 32) + 0xA0000028, 4, "stopping", text)
    assert control.stopped_by_patroni


@pytest.mark.parametrize("text", [
    None, "", "{", "[]", '{"state": "shut down", "checkpoint": "zz", "timeline": 4}',
    '{"state": "shut down", "checkpoint": "0/10", "timeline": true}',
    '{"state": 1, "checkpoint": "0/10", "timeline": 4}',
])
def test_a_malformed_report_is_missing_never_guessed(text: str | None) -> None:
    annotations = {} if text is None else {"rolegen.io/control": text}
    assert Control.from_annotations(annotations) is None


def test_a_patroni_word_that_is_not_text_is_unknown() -> None:
    text = json.dumps({"state": "shut down", "checkpoint": "0/10", "timeline": 1, "patroni": 3})
    control = Control.from_annotations({"rolegen.io/control": text})
    assert control is not None and control.patroni is None and not control.stopped_by_patroni

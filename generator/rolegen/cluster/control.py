"""A member's pg_control, as it publishes it on its own Pod the moment it changes (the chart's
files/member_control.py, started by the startup guard): the cluster state, the latest checkpoint, and at a clean
shutdown its Patroni's own state word. A switchover reads in it that the old primary has shut down, and where its
data ends, about two seconds before Patroni 4.1.5 publishes either (rolegen.procedures.rules.shutdown_proof)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rolegen.cluster.storage import lsn_int

ANNOTATION = "rolegen.io/control"


@dataclass(frozen=True)
class Control:
    state: str  # pg_control's "Database cluster state"
    checkpoint: int  # the latest checkpoint's location
    timeline: int
    patroni: str | None  # Patroni's state word when it read `shut down` (None otherwise or unknown)
    text: str  # the raw annotation: a change proves the publisher wrote since

    @property
    def stopped_by_patroni(self) -> bool:
        """PostgreSQL shut down cleanly (a primary's shutdown checkpoint is its last record) while its Patroni
        was stopping it: for a demotion or its own exit, after which that Patroni never starts it as a primary on
        the configuration it acted on. A restart says `restarting`; a stop by anyone else, `running`."""
        return self.state == "shut down" and self.patroni == "stopping"

    @classmethod
    def from_annotations(cls, annotations: dict[str, Any]) -> Control | None:
        """The report of a Pod's annotations; None when absent or not as the publisher writes it (never guessed)."""
        text = annotations.get(ANNOTATION)
        try:
            data = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        state, checkpoint, timeline, patroni = (data.get(k) for k in ("state", "checkpoint", "timeline", "patroni"))
        lsn = lsn_int(checkpoint)
        if not isinstance(state, str) or lsn is None or not isinstance(timeline, int) or isinstance(timeline, bool):
            return None
        return cls(state, lsn, timeline, patroni if isinstance(patroni, str) else None, str(text))

"""Waking a site's Patroni now instead of after its `loop_wait`.

Patroni publishes a member's position (its Pod's `status` annotation) once per HA loop: every `loop_wait`
seconds (10 in the bundled specs), or at once when its DCS watch sees the `config` annotation change (Patroni
4.1.5, dcs/kubernetes.py ObjectCache._process_event compares the annotation *text*). A gate that waits for the
target's replay position would otherwise wait up to a whole loop after the position was reached.

So the nudge rewrites the target's `config` annotation with the same JSON and one trailing space more or less:
the same configuration for Patroni (json.loads ignores it; nothing reloads), a new text for its watch. The write
carries the resourceVersion it was computed from: a configuration that changed meanwhile is never overwritten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rolegen.cluster.dcs_write import rewrite_text
from rolegen.cluster.kubectl import Cluster, ClusterError
from rolegen.cluster.site_state import SiteState
from rolegen.offline.spec import Spec


def toggled(text: str) -> str:
    """The same JSON document with a different text: one trailing space added or removed."""
    return text[:-1] if text.endswith(" ") else text + " "


@dataclass
class Nudger:
    """Wakes `spec`'s Patroni at most once per `every` seconds (`maybe`), from the last state it saw."""

    cluster: Cluster
    spec: Spec
    every: float = 0.3
    text: str | None = None
    version: str | None = None
    last: float = float("-inf")
    count: int = 0

    def seen(self, state: SiteState) -> None:
        self.text, self.version = state.config_annotations.get("config"), state.config_resource_version

    def maybe(self) -> None:
        now = time.monotonic()
        if self.text is None or self.version is None or now - self.last < self.every:
            return
        self.last, new = now, toggled(self.text)
        try:
            version = rewrite_text(self.cluster, self.spec.config_map, new, self.version)
        except ClusterError:
            self.version = None  # changed meanwhile (or unreachable): wait for a fresh read, never retry blindly
            return
        self.text, self.version, self.count = new, version, self.count + 1


    @contextmanager
    def running(self) -> Iterator[None]:
        """Nudge every `every` seconds in a background thread while the block runs (e.g. while the old site
        demotes); the thread has stopped when the block exits, so the caller alone uses the nudger after."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                self.maybe()
                stop.wait(self.every)

        thread = threading.Thread(target=loop, name=f"nudge-{self.spec.environment}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

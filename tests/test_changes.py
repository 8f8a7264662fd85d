"""Being woken by a site's changes (rolegen.cluster.changes): a wait that sleeps between reads ends its sleep as
soon as a watched object changed, and a change that lands while it reads is never lost."""

from __future__ import annotations

import threading
import time

from rolegen.cluster.changes import Changes, Watched, watch_path
from rolegen.cluster.kubectl import Cluster


def test_a_change_ends_the_next_sleep_at_once_and_is_consumed_by_it() -> None:
    changes = Changes()
    changes._seen(b'{"type":"MODIFIED"}')  # arrives while the wait reads
    started = time.monotonic()
    changes.sleep(30)
    assert time.monotonic() - started < 5  # not the 30 s fallback
    started = time.monotonic()
    changes.sleep(0.2)  # consumed: this one sleeps its time
    assert time.monotonic() - started >= 0.19
    assert changes.events == 1


def test_a_change_during_a_sleep_wakes_it() -> None:
    changes = Changes()
    threading.Timer(0.1, changes._seen, args=(b"{}",)).start()
    started = time.monotonic()
    changes.sleep(30)
    assert time.monotonic() - started < 5


def test_a_site_is_watched_by_its_selector_in_its_namespace() -> None:
    site = Watched(Cluster("f088b1-prod", "gold"), "application=patroni,cluster-name=patroni")
    assert watch_path(site, "pods") == ("/api/v1/namespaces/f088b1-prod/pods?watch=1&"
                                        "labelSelector=application%3Dpatroni%2Ccluster-name%3Dpatroni")

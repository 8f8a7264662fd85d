"""The one way rolegen waits for a site: observe, test, sleep, until the test holds or time runs out.

A wait returns its last observation (what the caller decides from) and, when time runs out, raises WaitTimedOut
carrying that observation: a timeout is a typed fact, never a message to match. An error the observation raises
(a failed read, a refused write) propagates as it is: it is never a timeout, nor "done".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from rolegen.cluster.kubectl import RERUN_HINT
from rolegen.errors import WaitTimedOut

T = TypeVar("T")


def poll(
    observe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    every: float,
    what: str,
    hint: str | None = None,
    seen: Callable[[T, float], None] | None = None,
    sleep_first: bool = False,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Call `observe` until `done(observation)`; return that observation. `seen(observation, elapsed)` runs after
    each observation (progress lines). `sleep_first`: the caller has just looked, so the first observation waits
    `every`. The last sleep is cut to the deadline, so one observation is made at it before WaitTimedOut. `sleep`:
how to wait between observations (rolegen.cluster.changes: less, when a watched object changed)."""
    pause = sleep or time.sleep
    start = time.monotonic()
    if sleep_first:
        pause(min(every, timeout))
    while True:
        last = observe()
        elapsed = time.monotonic() - start
        if seen is not None:
            seen(last, elapsed)
        if done(last):
            return last
        if elapsed >= timeout:
            raise WaitTimedOut(f"timed out after {timeout:.0f}s waiting for {what}", hint or RERUN_HINT,
                               what=what, last=last)
        pause(max(0.0, min(every, timeout - elapsed)))

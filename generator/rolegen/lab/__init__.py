"""Lab infrastructure (the `lab` extra): an emulated Kubernetes API and helpers to run Patroni members.

Nothing here is imported by the generator itself; it exists for tests and for `rolegen lab`.
"""

from __future__ import annotations

"""Lab infrastructure (the `lab` extra): a real Kubernetes control plane per site (binaries built by
`rolegen lab build`), the lab's node agent and volume provisioner, and helpers to run Patroni members.

Nothing here is imported by the generator itself; it exists for tests and for `rolegen lab`.
"""

from __future__ import annotations

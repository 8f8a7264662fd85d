"""rolegen: role-based configuration and guarded role changes for two-site Patroni on Kubernetes."""

from __future__ import annotations

__version__ = "0.1.0"

"""The errors of a cluster call, whichever way it ran (a kubectl run, rolegen.cluster.kubectl; or a request through
the run's API proxy, rolegen.cluster.api_calls): one class per thing a caller decides on."""

from __future__ import annotations

from rolegen.errors import RolegenError


class ClusterError(RolegenError):
    """A cluster call failed."""


# What an operator does after any interrupted command: every verb reads the live state when it starts.
RERUN_HINT = ("nothing after the failed step was done: rolegen status shows where the pair stands (and names what "
              "clears each problem); re-running the same command starts from the live state")


class ClusterUnreachable(ClusterError):
    pass


class Conflict(ClusterError):
    """Optimistic concurrency: the object changed between our read and our write."""


class AlreadyExists(ClusterError):
    """A create found the object there already."""


class Forbidden(ClusterError):
    """Authenticated, but RBAC does not allow the verb."""

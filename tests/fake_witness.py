"""The witness's API server in memory, for rolegen.witness.lease.WitnessLease: one Lease, resourceVersion-checked
writes, and scripted faults (reads or writes that do not answer, a write applied whose answer was lost, the old
site's guard renewing between a read and a write). `events` keeps the writes in order; a test may pass the list
its fake sites write to, so the order of the witness write and the promotion shows."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from rolegen.cluster.kubectl import AlreadyExists, ClusterError, ClusterUnreachable, Conflict
from rolegen.offline.spec import Witness
from rolegen.procedures.base import Pair
from rolegen.witness.lease import WitnessLease
from rolegen.witness.rules import Timers

NAME = "patroni-pair"


def unanswered() -> ClusterUnreachable:
    return ClusterUnreachable("cannot reach the cluster of context witness: i/o timeout")


class FakeWitness:
    """`holder`: the Lease's holder (None: a Lease held by nobody); `exists=False`: no Lease at all. `reads` and
    `writes`: errors raised by the next reads / writes, in order (None: answers); `renewals`: how many times the
    old holder renews right before one of our writes lands; `lost_answers`: writes applied, then answered as
    unreachable."""

    namespace = "rolegen-witness"

    def __init__(self, holder: str | None = "gold", *, exists: bool = True, events: list[Any] | None = None) -> None:
        self.version = 10
        self.obj: dict[str, Any] | None = None
        if exists:
            self.obj = {"metadata": {"name": NAME, "resourceVersion": "10"},
                        "spec": {"holderIdentity": holder, "leaseTransitions": 2}}
        self.events: list[Any] = events if events is not None else []
        self.reads: list[ClusterError | None] = []
        self.writes: list[ClusterError | None] = []
        self.renewals = 0
        self.lost_answers = 0
        self.looks = 0

    @property
    def holder(self) -> str | None:
        return None if self.obj is None else self.obj["spec"].get("holderIdentity")

    def _bump(self) -> str:
        assert self.obj is not None
        self.version += 1
        self.obj["metadata"]["resourceVersion"] = str(self.version)
        return str(self.version)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        assert (kind, name) == ("lease", NAME)
        self.looks += 1
        if self.reads and (fault := self.reads.pop(0)) is not None:
            raise fault
        return copy.deepcopy(self.obj)

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None) -> str:
        assert (kind, name) == ("lease", NAME) and self.obj is not None
        if self.writes and (fault := self.writes.pop(0)) is not None:
            raise fault
        if self.renewals:  # the old holder's guard renewed between our read and our write
            self.renewals -= 1
            self._bump()
        if resource_version != self.obj["metadata"]["resourceVersion"]:
            raise Conflict(f"patch lease {NAME}: changed by someone else since it was read")
        self.obj["spec"].update(patch.get("spec", {}))
        version = self._bump()
        self.events.append(("witness", f"take {patch['spec']['holderIdentity']} at {resource_version}"))
        if self.lost_answers:
            self.lost_answers -= 1
            raise unanswered()
        return version

    def create(self, obj: dict[str, Any]) -> None:
        if self.writes and (fault := self.writes.pop(0)) is not None:
            raise fault
        if self.obj is not None:
            raise AlreadyExists(f"create lease {NAME}: already exists")
        self.obj = copy.deepcopy(obj)
        self.obj["metadata"]["resourceVersion"] = str(self.version)
        self.events.append(("witness", f"create {obj['spec']['holderIdentity']}"))


def witnessed(pair: Pair, fake: FakeWitness, mode: str = "automatic") -> Pair:
    """`pair` with both specs declaring the witness (`mode`) and its Lease client on `fake`; its request timeout
    scaled down (a best-effort move waits for two of them)."""
    timers = Timers(fence_after=3, margin=1, renew_every=0.5, request_timeout=0.1)
    witness = Witness("witness", FakeWitness.namespace, NAME, mode=mode, secret="patroni-witness", timers=timers)
    pair.to, pair.other = replace(pair.to, witness=witness), replace(pair.other, witness=witness)
    pair.witness = WitnessLease(fake, NAME, 30)  # type: ignore[arg-type]
    return pair

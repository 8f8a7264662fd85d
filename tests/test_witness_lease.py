"""The witness Lease client (rolegen.witness.lease) on a recording cluster: what each write carries. The real
API server's answers to stale writes are tested on the lab (tests/lab/test_real_apiserver.py)."""

from __future__ import annotations

from typing import Any

import pytest

from rolegen.witness.lease import LSN, LeaseLost, WitnessLease, WitnessView


class Recorder:
    namespace = "witness"

    def __init__(self) -> None:
        self.patches: list[tuple[str, str, dict[str, Any], str | None]] = []

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any], resource_version: str | None = None) -> str:
        self.patches.append((kind, name, patch, resource_version))
        return str(int(resource_version or "0") + 1)


def test_a_read_gives_holder_version_published_position_and_transitions() -> None:
    obj = {"metadata": {"resourceVersion": "12", "annotations": {LSN: "4096"}},
           "spec": {"holderIdentity": "gold", "leaseTransitions": 3, "renewTime": "2026-12-02T03:04:05.000006Z"}}
    assert WitnessView.of(obj) == WitnessView("gold", "12", 4096, 3)
    assert WitnessView.of(obj).renew_time == "2026-12-02T03:04:05.000006Z"  # for people: never part of a comparison
    assert WitnessView.of(None) == WitnessView(None, None)
    garbled = {"metadata": {"resourceVersion": "1", "annotations": {LSN: "x"}}, "spec": {}}
    assert WitnessView.of(garbled).lsn is None


def test_every_write_carries_the_version_it_was_computed_from() -> None:
    recorder = Recorder()
    lease = WitnessLease(recorder, "pair", duration=30)  # type: ignore[arg-type]
    renewed = lease.renew("gold", WitnessView("gold", "7"), lsn=100)
    assert renewed == WitnessView("gold", "8", 100, 0)
    taken = lease.take("golddr", renewed)
    assert taken == WitnessView("golddr", "9", 100, 1)
    (_, _, renew, v1), (_, _, take, v2) = recorder.patches
    assert (v1, v2) == ("7", "8")
    assert renew["metadata"]["annotations"][LSN] == "100" and renew["spec"]["leaseDurationSeconds"] == 30
    assert take["spec"]["holderIdentity"] == "golddr" and take["spec"]["leaseTransitions"] == 1


def test_a_site_never_renews_a_lease_another_site_holds() -> None:
    recorder = Recorder()
    lease = WitnessLease(recorder, "pair", duration=30)  # type: ignore[arg-type]
    with pytest.raises(LeaseLost, match="held by golddr, not gold"):
        lease.renew("gold", WitnessView("golddr", "9"), lsn=None)
    assert recorder.patches == []

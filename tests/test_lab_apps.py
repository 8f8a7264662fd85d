"""The lab's app as a dependent (rolegen_lab.apps), without a lab: the specs the lab writes with it stay valid and
declare the same dependent at both sites, and the StatefulSet the lab creates is the one those specs scale (its
name, its replicas for each role, a selector its Pods match)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import spec_data

from rolegen.offline.load import Document
from rolegen.offline.validate import validate_specs
from rolegen_lab import apps
from rolegen_lab.lab import _merge
from rolegen_lab.node.apps import APP_LABEL, AppPods


def test_the_lab_specs_with_the_app_are_valid_and_scale_its_statefulset_per_role() -> None:
    docs = []
    for env in ("gold", "golddr"):
        data = spec_data(env)
        _merge(data, apps.OVERRIDES)
        docs.append(Document(Path(f"{env}.yaml"), f"{env}.yaml", data))
    result = validate_specs(docs)
    assert [p for p in result.problems if p.severity == "error"] == []
    for spec in result.specs.values():
        [dep] = spec.dependents
        sts = apps.statefulset(spec)
        assert (dep.kind, dep.workload) == (sts["kind"], sts["metadata"]["name"])
        assert sts["spec"]["replicas"] == dep.replicas[spec.role] == apps.REPLICAS[spec.role]
        labels = sts["spec"]["template"]["metadata"]["labels"]
        assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert AppPods.owns({"metadata": {"labels": labels}}) and APP_LABEL in labels
        env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["DATABASE_HOST"]["value"] == f"{spec.release}-master"  # through the Service, as a real app
        assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == spec.secrets["app"]

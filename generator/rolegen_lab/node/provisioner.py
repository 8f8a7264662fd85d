"""The lab's volume provisioner: a local directory per PersistentVolumeClaim, bound by the real PV controller.

Owns the site's PersistentVolumes. For each Pending claim without a volume it creates a `hostPath` PV
(a directory under `<root>/volumes/`, owned by the member user) pre-bound to the claim through `claimRef`,
with the claim's class, size and access modes; kube-controller-manager's persistentvolume-binder binds them.
When a claim is deleted (its PV is Released), the directory is wiped and the PV deleted: deleting a PVC
deletes the member's data, as with a dynamically provisioned volume whose reclaim policy is Delete.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rolegen_lab.controlplane.apiclient import ApiError, KubeApi
from rolegen_lab.node.runtime import MemberRuntime


class Provisioner:
    def __init__(self, api: KubeApi, root: Path, runtime: MemberRuntime) -> None:
        self.api, self.root, self.runtime = api, root, runtime

    def path_of(self, pv_name: str) -> Path:
        return self.root / "volumes" / pv_name

    def on_volume(self, data_dir: str, mounts: dict[str, Path]) -> Path | None:
        """Where `data_dir` (a path in the container) is on the volumes mounted at `mounts`, its parents made
        (owned by the member user); None: on none of them."""
        for mount_path, directory in mounts.items():
            prefix = mount_path.rstrip("/") + "/"
            if data_dir.startswith(prefix):
                path = directory
                for part in Path(data_dir.removeprefix(prefix)).parts[:-1]:
                    path = path / part
                    path.mkdir(mode=0o700, exist_ok=True)
                    self.runtime.own(path)
                return path / Path(data_dir).name
        return None

    def reconcile(self) -> None:
        """Release before provisioning, so a claim deleted and re-created meanwhile starts empty."""
        pvs = self.api.request("GET", "/api/v1/persistentvolumes")["items"]
        claims = {c["metadata"]["uid"]: c for c in self.api.list("persistentvolumeclaims")}
        for pv in pvs:
            ref = pv["spec"].get("claimRef") or {}
            mine = pv.get("metadata", {}).get("labels", {}).get("rolegen.lab/provisioner") == "local"
            if not mine or ref.get("namespace") != self.api.namespace:
                continue
            if ref.get("uid") not in claims or pv.get("status", {}).get("phase") in ("Released", "Failed"):
                self._release(pv)
        bound = {(pv["spec"].get("claimRef") or {}).get("uid") for pv in pvs}
        for uid, claim in claims.items():
            if claim["spec"].get("volumeName") or uid in bound or claim["metadata"].get("deletionTimestamp"):
                continue
            self._provision(claim)

    def _provision(self, claim: dict[str, Any]) -> None:
        meta, spec = claim["metadata"], claim["spec"]
        name = f"pvc-{meta['uid']}"
        directory = self.path_of(name)
        directory.mkdir(parents=True, exist_ok=True)
        directory.parent.chmod(0o755)
        directory.chmod(0o755)
        self.runtime.own(directory)
        pv = {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"rolegen.lab/provisioner": "local"}},
            "spec": {
                "capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "storageClassName": spec.get("storageClassName") or "",
                "persistentVolumeReclaimPolicy": "Retain",  # the provisioner itself deletes (see _release)
                "hostPath": {"path": str(directory), "type": "Directory"},
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                             "name": meta["name"], "uid": meta["uid"]},
            },
        }
        try:
            self.api.request("POST", "/api/v1/persistentvolumes", pv)
        except ApiError as exc:
            if exc.status != 409:
                raise

    def _release(self, pv: dict[str, Any]) -> None:
        name = pv["metadata"]["name"]
        shutil.rmtree(self.path_of(name), ignore_errors=True)
        try:
            self.api.request("DELETE", f"/api/v1/persistentvolumes/{name}")
        except ApiError as exc:
            if exc.status != 404:
                raise

    def volume_dir(self, claim_name: str) -> Path | None:
        """The directory of a Bound claim (None while it is not bound yet)."""
        claim = self.api.get("persistentvolumeclaims", claim_name)
        if not claim or claim.get("status", {}).get("phase") != "Bound" or not claim["spec"].get("volumeName"):
            return None
        return self.path_of(claim["spec"]["volumeName"])

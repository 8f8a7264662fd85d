"""What the lab's node agent reports about a Pod and its Node: pure functions building API status objects.

Owns the shape of `Pod.status` (phase, IPs, conditions, containerStatuses with restartCount: what
`kubectl get pods` shows as READY/STATUS/RESTARTS, what EndpointSlices and the StatefulSet controller read)
and of the Node object. Pod IPs are addresses from 10.244.<site>.0/24: the API server refuses loopback
addresses in EndpointSlices, and the lab's members listen on loopback ports (see members.py), so a Pod IP is
a name the lab maps back to its member, not a route.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

HOST_IP = "127.0.0.1"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerState:
    """What the agent knows about the Pod's one container."""

    name: str
    image: str
    running: bool = False
    ready: bool = False
    restarts: int = 0
    started_at: str | None = None
    last_exit: int | None = None
    waiting: str | None = None  # reason while not running (ContainerCreating, CrashLoopBackOff, ...)


def _condition(kind: str, ok: bool, since: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None, "lastTransitionTime": since}


def pod_status(pod_ip: str, start_time: str, c: ContainerState, since: str) -> dict[str, Any]:
    """A running (or restarting) Pod's status; `since` stamps the conditions' last transition."""
    state: dict[str, Any]
    if c.running:
        state = {"running": {"startedAt": c.started_at}}
    elif c.waiting is None and c.last_exit is not None:  # died, not restarted yet (e.g. a node outage)
        state = {"terminated": {"exitCode": c.last_exit, "reason": "Error"}}
    else:
        state = {"waiting": {"reason": c.waiting or "ContainerCreating"}}
    container: dict[str, Any] = {
        "name": c.name, "image": c.image, "imageID": "", "containerID": f"lab://{c.name}-{c.restarts}",
        "ready": c.ready, "started": c.running, "restartCount": c.restarts, "state": state,
    }
    if c.last_exit is not None:
        container["lastState"] = {"terminated": {"exitCode": c.last_exit, "reason": "Error" if c.last_exit else
                                                 "Completed"}}
    return {
        "phase": "Running" if c.running or c.restarts else "Pending",
        "hostIP": HOST_IP, "hostIPs": [{"ip": HOST_IP}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
        "conditions": [
            _condition("PodScheduled", True, start_time),
            _condition("Initialized", True, start_time),
            _condition("ContainersReady", c.ready, since),
            _condition("Ready", c.ready, since),
        ],
        "containerStatuses": [container],
    }


def comparable(status: dict[str, Any]) -> dict[str, Any]:
    """The status without timestamps: what decides whether it must be written again."""
    c = status["containerStatuses"][0]
    return {"phase": status["phase"], "ready": c["ready"], "restarts": c["restartCount"], "state": list(c["state"]),
            "ip": status["podIP"]}


def node(name: str, site_index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                              "rolegen.lab/node-agent": "true"}},
        "spec": {"podCIDR": f"10.244.{site_index}.0/24", "podCIDRs": [f"10.244.{site_index}.0/24"]},
    }


def node_status(version: str) -> dict[str, Any]:
    stamp = now()
    return {"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "LabNodeAgentReady",
                        "message": "rolegen lab node agent runs Pods as local processes",
                        "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
        "addresses": [{"type": "InternalIP", "address": HOST_IP}, {"type": "Hostname", "address": "localhost"}],
        "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"},
        "nodeInfo": {"kubeletVersion": version, "containerRuntimeVersion": "rolegen-lab://processes",
                     "operatingSystem": "linux", "architecture": "amd64", "osImage": "", "kernelVersion": "",
                     "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
    }}

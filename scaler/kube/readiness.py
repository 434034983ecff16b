"""Pool readiness: which nodes of a pool can run GPU pods now, which are coming, which failed.

A node counts as GPU-ready when its ``Ready`` condition is True, it is schedulable, and it
advertises ``nvidia.com/gpu`` allocatable. A node that is registered but not GPU-ready is still
starting (driver install, device plugin) and counts as coming until ``gpu_init_timeout`` after
it registered, then as failed. Counting it as ready with zero GPUs would make a reactive loop
ask for another node for the same pending pod, once per cycle, until the first node's GPUs
appear. Everything here is pure: nodes and objects come in as dicts, time is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from scaler.kube.objects import as_int, condition, get_path, timestamp

GPU_RESOURCE = "nvidia.com/gpu"

# Substrings (case-insensitive) of condition messages that mean "the cloud has no such
# machines right now" or "the account's quota is used up". Sources: AWS EC2
# InsufficientInstanceCapacity, GCE ZONE_RESOURCE_POOL_EXHAUSTED and QUOTA_EXCEEDED, Azure
# SkuNotAvailable, AllocationFailed and QuotaExceeded error codes.
CAPACITY_ERROR_PATTERNS = (
    "insufficientinstancecapacity",
    "insufficient capacity",
    "zone_resource_pool_exhausted",
    "resource pool exhausted",
    "skunotavailable",
    "allocationfailed",
    "out of capacity",
)
QUOTA_ERROR_PATTERNS = ("quota_exceeded", "quotaexceeded", "quota exceeded", "exceeds quota")


@dataclass(frozen=True)
class PoolReadiness:
    """State of one pool's nodes and provisioning object at one time."""

    pool: str
    ready_nodes: int
    coming_nodes: int
    failed_nodes: tuple[str, ...]
    allocatable_gpus: int
    object_ready: bool | None = None
    object_synced: bool | None = None
    capacity_error: str | None = None
    quota_error: str | None = None

    @property
    def present_nodes(self) -> int:
        return self.ready_nodes + self.coming_nodes + len(self.failed_nodes)

    def holds(self, target_nodes: int) -> tuple[bool, str]:
        """Return whether ``target_nodes`` GPU-ready nodes are there, and why not otherwise."""
        if self.object_ready is False or self.object_synced is False:
            return False, (
                f"pool {self.pool}: provisioning object is not Ready/Synced "
                f"(Ready={self.object_ready}, Synced={self.object_synced})"
            )
        if self.ready_nodes < target_nodes:
            return False, (
                f"pool {self.pool}: {self.ready_nodes} of {target_nodes} nodes are GPU-ready "
                f"({self.coming_nodes} coming, {len(self.failed_nodes)} failed)"
            )
        return True, f"pool {self.pool}: {self.ready_nodes} GPU-ready nodes >= {target_nodes}"


def node_gpus(node: Mapping[str, Any], resource: str = GPU_RESOURCE) -> int:
    return as_int(get_path(node, ("status", "allocatable", resource))) or 0


def is_gpu_ready(node: Mapping[str, Any], resource: str = GPU_RESOURCE) -> bool:
    ready = condition(node, "Ready")
    schedulable = not get_path(node, ("spec", "unschedulable"))
    return bool(ready and ready.get("status") == "True" and schedulable) and (
        node_gpus(node, resource) > 0
    )


def assess_nodes(
    pool: str,
    nodes: Iterable[Mapping[str, Any]],
    now: pd.Timestamp,
    gpu_init_timeout_seconds: float,
    resource: str = GPU_RESOURCE,
) -> PoolReadiness:
    """Classify a pool's nodes as GPU-ready, coming (before the GPU-init deadline) or failed."""
    ready = coming = gpus = 0
    failed: list[str] = []
    for node in nodes:
        if is_gpu_ready(node, resource):
            ready += 1
            gpus += node_gpus(node, resource)
            continue
        registered = timestamp(get_path(node, ("metadata", "creationTimestamp")))
        age = (now - registered).total_seconds() if registered is not None else 0.0
        if age < gpu_init_timeout_seconds:
            coming += 1
        else:
            failed.append(str(get_path(node, ("metadata", "name"))))
    return PoolReadiness(pool, ready, coming, tuple(sorted(failed)), gpus)


def with_provisioning_objects(
    readiness: PoolReadiness,
    pool_object: Mapping[str, Any] | None,
    composed: Sequence[Mapping[str, Any]] = (),
    check_conditions: bool = True,
) -> PoolReadiness:
    """Add the pool object's Ready/Synced conditions and any capacity or quota error.

    Errors are read from conditions that are not True on the pool object and on the objects
    composed from it (a Crossplane XR's managed resources carry the cloud's error message).
    """
    ready = synced = None
    if pool_object is not None and check_conditions:
        ready = _condition_true(pool_object, "Ready")
        synced = _condition_true(pool_object, "Synced")
    messages = [m for obj in [pool_object, *composed] if obj for m in _failing_messages(obj)]
    return replace(
        readiness,
        object_ready=ready,
        object_synced=synced,
        capacity_error=_first_match(messages, CAPACITY_ERROR_PATTERNS),
        quota_error=_first_match(messages, QUOTA_ERROR_PATTERNS),
    )


def reactive_node_floor(
    current_floor: int, readiness: PoolReadiness, pending_gpus: int, gpus_per_node: int
) -> int:
    """Return the node floor that covers ``pending_gpus`` GPUs of pending pods.

    Nodes in the current floor that are not GPU-ready yet (requested, registering, or starting
    their GPUs) are capacity on its way, so they cover pending GPUs before any new node is
    requested. Failed nodes are not capacity, so each one is replaced.
    """
    upcoming_nodes = max(0, current_floor - readiness.ready_nodes - len(readiness.failed_nodes))
    uncovered = max(0, pending_gpus - upcoming_nodes * gpus_per_node)
    return current_floor + math.ceil(uncovered / gpus_per_node)


def selector_text(labels: Mapping[str, str]) -> str:
    """Format ``{"a": "b"}`` as the label selector ``a=b``."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _condition_true(obj: Mapping[str, Any], kind: str) -> bool | None:
    entry = condition(obj, kind)
    return None if entry is None else entry.get("status") == "True"


def _failing_messages(obj: Mapping[str, Any]) -> list[str]:
    found = []
    for entry in get_path(obj, ("status", "conditions")) or []:
        if isinstance(entry, Mapping) and entry.get("status") != "True":
            found.append(f"{entry.get('reason', '')}: {entry.get('message', '')}")
    return found


def _first_match(messages: Iterable[str], patterns: Sequence[str]) -> str | None:
    for message in messages:
        if any(pattern in message.lower() for pattern in patterns):
            return message
    return None

"""Read the objects that carry peakcast's floors: one per written pool, one per workload.

``peakcast status``, ``peakcast expire-floors`` and the run-time pause check all start here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forecaster.errors import PeakcastError
from scaler.core.decision import FloorKind
from scaler.kube.client import KubeClient
from scaler.kube.clusters import ClusterClients
from scaler.kube.nodeside import PoolMode
from scaler.kube.objects import Obj, as_int, get_path, peakcast_annotations
from scaler.kube.ownership import ReplicaOwner, resolve_owner
from scaler.kube.pool_modes import POOL_MODES
from scaler.kube.writer import FloorTarget
from scaler.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FloorObject:
    """One object that carries a floor, as read now; ``error`` explains a failed read."""

    kind: FloorKind
    name: str
    client: KubeClient
    target: FloorTarget | None
    obj: Obj | None
    mode: PoolMode | None = None  # pools only
    owner: ReplicaOwner | None = None  # workloads only
    error: str = ""

    @property
    def value(self) -> int | None:
        """Return the floor field's value, or None when the object or field is missing."""
        if self.obj is None or self.target is None:
            return None
        return as_int(get_path(self.obj, self.target.field_path))

    @property
    def annotations(self) -> dict[str, str]:
        return peakcast_annotations(self.obj or {})

    @property
    def label(self) -> str:
        return self.target.label if self.target is not None else f"{self.kind} {self.name}"


def read_floor_objects(clients: ClusterClients, settings: Settings) -> list[FloorObject]:
    """Read every pool object with an actuator and every workload's replica owner.

    An object that cannot be read is returned with ``error`` set, so one failure does not hide
    the other floors.
    """
    found = [_pool_object(clients, settings, pool.name) for pool in settings.pools if pool.actuator]
    found += [_workload_object(clients, settings, w.name) for w in settings.workloads]
    return found


def _pool_object(clients: ClusterClients, settings: Settings, name: str) -> FloorObject:
    pool = settings.pool(name)
    client = clients.for_pool(name)
    mode = POOL_MODES[pool.actuator.mode](client, pool)  # type: ignore[union-attr]
    target: FloorTarget = mode.target  # type: ignore[attr-defined]  # every mode sets one
    try:
        obj = client.get(target.rtype, target.name, target.namespace)
    except PeakcastError as error:
        logger.warning("Could not read %s of pool %s: %s", target.label, name, error)
        return FloorObject("pool", name, client, target, None, mode, error=str(error))
    problem = "" if obj is not None else f"{target.label} not found"
    return FloorObject("pool", name, client, target, obj, mode, error=problem)


def _workload_object(clients: ClusterClients, settings: Settings, name: str) -> FloorObject:
    client = clients.for_workload(name)
    try:
        owner = resolve_owner(client, settings.workload(name))
    except PeakcastError as error:
        logger.warning("Could not find the replica owner of workload %s: %s", name, error)
        return FloorObject("workload", name, client, None, None, error=str(error))
    return FloorObject("workload", name, client, owner.target, owner.obj, owner=owner)


def annotation_record(annotations: Mapping[str, str], key: str) -> dict[str, Any]:
    """Parse a JSON annotation written by peakcast; an unreadable one reads as empty."""
    text = annotations.get(key)
    if not text:
        return {}
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}

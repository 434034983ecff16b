"""Node mode ``custom_field``: peakcast sets a configured integer field of another resource.

For clusters that already have a pool API: a Crossplane v1 claim, a cluster autoscaler
``CapacityBuffer``, an in-house resource. The field counts nodes or GPUs, as configured.
"""

from __future__ import annotations

import math

import pandas as pd

from scaler.kube.client import KubeClient
from scaler.kube.nodeside import PoolObservation, assess_pool_nodes, pool_nodes
from scaler.kube.objects import as_int, get_path, split_path
from scaler.kube.readiness import with_provisioning_objects
from scaler.kube.resources import ResourceType
from scaler.kube.writer import FloorTarget
from scaler.settings import CustomFieldActuatorSettings, PoolSettings


class CustomFieldMode:
    """Reads and writes one integer field of one object."""

    def __init__(self, client: KubeClient, pool: PoolSettings) -> None:
        if not isinstance(pool.actuator, CustomFieldActuatorSettings):
            raise TypeError(f"pool {pool.name}: actuator mode is not 'custom_field'")
        settings = pool.actuator
        self._client = client
        self._pool = pool
        self._per_node = pool.gpus_per_node if settings.unit == "gpus" else 1
        rtype = ResourceType(
            settings.api_version, settings.kind, settings.plural, settings.namespace is not None
        )
        self.target = FloorTarget(
            rtype, settings.name, settings.namespace, split_path(settings.field_path)
        )

    def observe(self, now: pd.Timestamp) -> PoolObservation:
        obj = self._client.get(self.target.rtype, self.target.name, self.target.namespace)
        nodes = pool_nodes(self._client, self._pool)
        readiness = with_provisioning_objects(assess_pool_nodes(self._pool, nodes, now), obj)
        current = None
        if obj is not None:
            value = as_int(get_path(obj, self.target.field_path))
            current = None if value is None else math.ceil(value / self._per_node)
        return PoolObservation(self._pool, self.target, obj, current, readiness, tuple(nodes))

    def field_value(self, nodes: int, observation: PoolObservation) -> tuple[int, str]:
        return nodes * self._per_node, ""

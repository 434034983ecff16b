"""Node mode ``placeholder``: pause pods of negative priority hold GPUs on an autoscaled pool.

A cluster autoscaler (or Karpenter) adds nodes for pending placeholder pods, and real serving
pods preempt them when they need the GPUs. To hold a floor of N nodes, peakcast sets the
placeholder Deployment's replicas to the GPUs of N nodes that serving pods on the pool do not
already use, divided by the GPUs one placeholder pod requests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from scaler.kube.client import KubeClient
from scaler.kube.nodeside import PoolObservation, assess_pool_nodes, pool_nodes
from scaler.kube.objects import Obj, as_int, get_path
from scaler.kube.readiness import GPU_RESOURCE
from scaler.kube.resources import DEPLOYMENT, POD
from scaler.kube.writer import FloorTarget
from scaler.settings import PlaceholderActuatorSettings, PoolSettings

REPLICAS_FIELD = ("spec", "replicas")
# Pods bound to a node hold its GPUs until they end, whatever their phase.
_ACTIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"


class PlaceholderMode:
    """Reads and writes the replicas of one placeholder Deployment."""

    def __init__(self, client: KubeClient, pool: PoolSettings) -> None:
        if not isinstance(pool.actuator, PlaceholderActuatorSettings):
            raise TypeError(f"pool {pool.name}: actuator mode is not 'placeholder'")
        self._client = client
        self._pool = pool
        self._settings = pool.actuator
        self.gpus_per_pod = self._settings.gpus_per_pod or pool.gpus_per_node
        self.target = FloorTarget(
            DEPLOYMENT,
            self._settings.deployment_name,
            self._settings.deployment_namespace,
            REPLICAS_FIELD,
        )

    def observe(self, now: pd.Timestamp) -> PoolObservation:
        obj = self._client.get(DEPLOYMENT, self.target.name, self.target.namespace)
        nodes = pool_nodes(self._client, self._pool)
        readiness = assess_pool_nodes(self._pool, nodes, now)
        current = None
        if obj is not None:
            replicas = as_int(get_path(obj, REPLICAS_FIELD)) or 0
            held = replicas * self.gpus_per_pod + self._serving_gpus(obj, nodes)
            current = math.ceil(held / self._pool.gpus_per_node)
        return PoolObservation(self._pool, self.target, obj, current, readiness, tuple(nodes))

    def field_value(self, nodes: int, observation: PoolObservation) -> tuple[int, str]:
        if observation.obj is None:
            return 0, ""
        serving = self._serving_gpus(observation.obj, list(observation.nodes))
        free = max(0, nodes * self._pool.gpus_per_node - serving)
        replicas = math.ceil(free / self.gpus_per_pod)
        return replicas, f"serving pods already use {serving} GPUs of the pool" if serving else ""

    def _serving_gpus(self, deployment: Obj, nodes: list[Obj]) -> int:
        names = {get_path(node, ("metadata", "name")) for node in nodes}
        if not names:
            return 0
        placeholder_labels = get_path(deployment, ("spec", "selector", "matchLabels")) or {}
        total = 0
        for pod in self._client.list(POD, field_selector=_ACTIVE_PODS):
            if get_path(pod, ("spec", "nodeName")) not in names:
                continue
            if _matches(get_path(pod, ("metadata", "labels")) or {}, placeholder_labels):
                continue
            total += _requested_gpus(pod)
        return total


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _requested_gpus(pod: Mapping[str, Any]) -> int:
    total = 0
    for container in get_path(pod, ("spec", "containers")) or []:
        resources = container.get("resources") or {}
        requested = (resources.get("requests") or {}).get(GPU_RESOURCE)
        limited = (resources.get("limits") or {}).get(GPU_RESOURCE)
        total += as_int(requested if requested is not None else limited) or 0
    return total

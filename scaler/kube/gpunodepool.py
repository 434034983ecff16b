"""Node mode ``gpunodepool``: peakcast sets ``spec.desiredNodes`` of its own Crossplane XR.

The ``GPUNodePool`` XR (deploy/crossplane) renders the count into the cloud's node group, and
no other autoscaler may scale that group. Readiness also needs the XR's Ready and Synced
conditions; capacity and quota errors are read from the XR and its composed resources.
"""

from __future__ import annotations

import logging

import pandas as pd

from forecaster.errors import PeakcastError
from scaler.kube.client import KubeClient
from scaler.kube.nodeside import PoolObservation, assess_pool_nodes, pool_nodes
from scaler.kube.objects import Obj, as_int, get_path
from scaler.kube.readiness import with_provisioning_objects
from scaler.kube.resources import GPU_NODE_POOL, ResourceType
from scaler.kube.writer import FloorTarget
from scaler.settings import GPUNodePoolActuatorSettings, PoolSettings

logger = logging.getLogger(__name__)

DESIRED_FIELD = ("spec", "desiredNodes")
GPU_READY_FIELD = ("status", "gpuReadyNodes")


class GPUNodePoolMode:
    """Reads and writes one ``GPUNodePool``."""

    def __init__(self, client: KubeClient, pool: PoolSettings) -> None:
        if not isinstance(pool.actuator, GPUNodePoolActuatorSettings):
            raise TypeError(f"pool {pool.name}: actuator mode is not 'gpunodepool'")
        self._client = client
        self._pool = pool
        self._settings = pool.actuator
        self.target = FloorTarget(
            GPU_NODE_POOL, self._settings.name, self._settings.namespace, DESIRED_FIELD
        )

    def observe(self, now: pd.Timestamp) -> PoolObservation:
        obj = self._client.get(GPU_NODE_POOL, self.target.name, self.target.namespace)
        nodes = pool_nodes(self._client, self._pool)
        readiness = assess_pool_nodes(self._pool, nodes, now)
        composed = self._composed(obj) if obj is not None else []
        readiness = with_provisioning_objects(readiness, obj, composed)
        current = as_int(get_path(obj, DESIRED_FIELD)) if obj is not None else None
        return PoolObservation(self._pool, self.target, obj, current, readiness, tuple(nodes))

    def field_value(self, nodes: int, observation: PoolObservation) -> tuple[int, str]:
        obj = observation.obj or {}
        low = as_int(get_path(obj, ("spec", "minNodes")))
        high = as_int(get_path(obj, ("spec", "maxNodes")))
        value = nodes
        if high is not None and value > high:
            return high, f"capped at the GPUNodePool's spec.maxNodes {high}"
        if low is not None and value < low:
            return low, f"raised to the GPUNodePool's spec.minNodes {low}"
        return value, ""

    def sync_status(self, observation: PoolObservation, dry_run: bool) -> None:
        """Write ``status.gpuReadyNodes`` when it differs from what the nodes show."""
        obj = observation.obj
        ready = observation.readiness.ready_nodes
        if obj is None or as_int(get_path(obj, GPU_READY_FIELD)) == ready:
            return
        body = {
            "apiVersion": GPU_NODE_POOL.api_version,
            "kind": GPU_NODE_POOL.kind,
            "metadata": {"name": self.target.name, "namespace": self.target.namespace},
            "status": {"gpuReadyNodes": ready},
        }
        try:
            self._client.apply_status(GPU_NODE_POOL, body, dry_run=dry_run)
        except PeakcastError as error:
            logger.warning(
                "Could not write status.gpuReadyNodes=%s on %s: %s", ready, self.target.label, error
            )

    def _composed(self, obj: Obj) -> list[Obj]:
        """Read the managed resources the XR composed; they carry the cloud's error messages."""
        refs = get_path(obj, ("spec", "crossplane", "resourceRefs")) or []
        found = []
        for ref in refs:
            if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
                continue
            # Crossplane's resourceRefs name the kind, not the resource; the providers' plural
            # is the lower-case kind plus "s" for the node-group kinds peakcast composes.
            rtype = ResourceType(ref["apiVersion"], ref["kind"], ref["kind"].lower() + "s")
            try:
                composed = self._client.get(rtype, ref["name"], self.target.namespace)
            except PeakcastError as error:
                logger.debug(
                    "Skipping composed %s of %s: %s", ref["kind"], self.target.label, error
                )
                continue
            if composed is not None:
                found.append(composed)
        return found

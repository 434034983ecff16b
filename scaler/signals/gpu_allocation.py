"""Signal: requested versus allocatable GPUs on a pool's GPU-ready nodes.

The value is requested / allocatable GPUs, from the pods bound to those nodes that have not
finished. Over ``max_requested_ratio`` the floor requested is the node count that brings the
requests under that share: ``ceil(requested / (max_requested_ratio x gpus_per_node))``.
That floor does not depend on the current floor, so a repeated read requests the same nodes.
"""

from __future__ import annotations

import logging
import math

import pandas as pd

from forecaster.errors import PeakcastError
from scaler.kube.client import KubeClient
from scaler.kube.nodeside import assess_pool_nodes, pool_nodes
from scaler.kube.objects import get_path
from scaler.kube.readiness import is_gpu_ready
from scaler.kube.resources import POD
from scaler.settings import PoolSettings
from scaler.signals.base import Reading, Sample, SignalKey, SignalUnavailableError
from scaler.signals.pods import FINISHED_PHASES, gpu_request, is_running_on
from scaler.signals.settings import GpuAllocationSignalSettings

logger = logging.getLogger(__name__)

NAME = "gpu_allocation"
# Ratios are rounded before ceil(), as in capacity planning, so 14.4 / 7.2 gives 2 and not 3.
_RATIO_DECIMALS = 9
ACTIVE_FIELD_SELECTOR = ",".join(f"status.phase!={phase}" for phase in FINISHED_PHASES)


class GpuAllocationSignal:
    """Reads the pool's nodes and the pods bound to them from the Kubernetes API."""

    cooldown_seconds = 0

    def __init__(
        self, client: KubeClient, pool: PoolSettings, settings: GpuAllocationSignalSettings
    ) -> None:
        self.key = SignalKey(NAME, "pool", pool.name)
        self.hysteresis = settings.hysteresis
        self._client = client
        self._pool = pool
        self._settings = settings

    def read(self, now: pd.Timestamp) -> Reading:
        resource = self._settings.resource
        try:
            nodes = pool_nodes(self._client, self._pool)
            # NOTE: one list of every active pod in the cluster per read; a very large cluster
            # may want a per-node field selector instead.
            pods = self._client.list(POD, field_selector=ACTIVE_FIELD_SELECTOR)
        except PeakcastError as error:
            raise SignalUnavailableError(
                f"pool {self._pool.name}: GPU allocation could not be read: {error}"
            ) from error

        readiness = assess_pool_nodes(self._pool, nodes, now)
        ready = {
            str(get_path(node, ("metadata", "name")))
            for node in nodes
            if is_gpu_ready(node, resource)
        }
        requested = sum(gpu_request(pod, resource) for pod in pods if is_running_on(pod, ready))
        allocatable = readiness.allocatable_gpus
        if allocatable:
            ratio = requested / allocatable
        elif requested:
            ratio = math.inf
        else:
            ratio = 0.0
        limit = self._settings.max_requested_ratio
        per_node = limit * self._pool.gpus_per_node
        needed = math.ceil(round(requested / per_node, _RATIO_DECIMALS))

        def floor_for(current: int) -> int:
            return needed

        detail = (
            f"{requested} of {allocatable} allocatable GPUs requested on "
            f"{readiness.ready_nodes} GPU-ready nodes; {needed} nodes keep requests at or "
            f"under {limit:.0%}"
        )
        sample = Sample(now, ratio, ratio > limit)
        return Reading((sample,), ratio, limit, "ratio", floor_for, detail)

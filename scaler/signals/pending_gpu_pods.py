"""Signal: GPU pods of a pool that the scheduler cannot place (Pending, Unschedulable).

The value is the GPUs those pods request. The floor they request is the pool's current floor
plus the nodes the pending GPUs need (``reactive_node_floor``). Nodes of the current floor that
are not GPU-ready yet already count as coming, so a pod that waits for a booting node does not
request a second one.

Each pending pod is evidence that the signal has been over its threshold since the pod became
unschedulable (its ``PodScheduled`` transition time). So one read supplies one sample per
distinct transition time, each counting the GPUs of the pods pending since then, and one sample
at ``now``. Hysteresis then holds after one read once the pods have waited long enough.
"""

from __future__ import annotations

import logging

import pandas as pd

from forecaster.errors import PeakcastError
from scaler.kube.client import KubeClient
from scaler.kube.nodeside import assess_pool_nodes, node_selector, pool_nodes
from scaler.kube.objects import Obj
from scaler.kube.readiness import PoolReadiness, reactive_node_floor
from scaler.kube.resources import POD
from scaler.settings import PoolSettings
from scaler.signals.base import Reading, Sample, SignalKey, SignalUnavailableError
from scaler.signals.pods import gpu_request, targets_pool, unschedulable_since
from scaler.signals.settings import PendingGpuPodsSignalSettings

logger = logging.getLogger(__name__)

NAME = "pending_gpu_pods"
PENDING_FIELD_SELECTOR = "status.phase=Pending"


class PendingGpuPodsSignal:
    """Reads the pool's unschedulable GPU pods and its nodes from the Kubernetes API."""

    cooldown_seconds = 0

    def __init__(
        self, client: KubeClient, pool: PoolSettings, settings: PendingGpuPodsSignalSettings
    ) -> None:
        self.key = SignalKey(NAME, "pool", pool.name)
        self.hysteresis = settings.hysteresis
        self._client = client
        self._pool = pool
        self._settings = settings

    def read(self, now: pd.Timestamp) -> Reading:
        try:
            pods = self._pending_pods()
            readiness = assess_pool_nodes(self._pool, pool_nodes(self._client, self._pool), now)
        except PeakcastError as error:
            raise SignalUnavailableError(
                f"pool {self._pool.name}: pending GPU pods could not be read: {error}"
            ) from error

        waiting = self._waiting_gpus(pods, now)
        total = sum(gpus for _, gpus in waiting)
        threshold = self._settings.min_pending_gpus
        samples = [*_evidence(waiting, threshold), Sample(now, float(total), total >= threshold)]
        gpus_per_node = self._pool.gpus_per_node

        def floor_for(current: int) -> int:
            return reactive_node_floor(current, readiness, total, gpus_per_node)

        detail = (
            f"{len(waiting)} unschedulable pods request {total} GPUs; {_readiness_text(readiness)}"
        )
        return Reading(tuple(samples), float(total), float(threshold), "GPUs", floor_for, detail)

    def _pending_pods(self) -> list[Obj]:
        settings = self._settings
        namespaces: list[str | None] = [*settings.namespaces] if settings.namespaces else [None]
        pods: list[Obj] = []
        for namespace in namespaces:
            pods += self._client.list(
                POD,
                namespace,
                label_selector=settings.pod_label_selector,
                field_selector=PENDING_FIELD_SELECTOR,
            )
        if settings.pod_label_selector:
            return pods
        labels = node_selector(self._pool)
        return [pod for pod in pods if targets_pool(pod, labels, settings.toleration_key)]

    def _waiting_gpus(self, pods: list[Obj], now: pd.Timestamp) -> list[tuple[pd.Timestamp, int]]:
        waiting = []
        for pod in pods:
            since = unschedulable_since(pod)
            gpus = gpu_request(pod, self._settings.resource)
            if since is not None and gpus > 0:
                waiting.append((min(since, now), gpus))
        return sorted(waiting, key=lambda item: item[0])


def _evidence(waiting: list[tuple[pd.Timestamp, int]], threshold: int) -> list[Sample]:
    """Return one sample per transition time: the GPUs of the pods pending since then.

    Pods still pending now were pending without a break since their transition time, so
    each sample is a lower bound of what was pending at that time.
    """
    samples: list[Sample] = []
    pending = 0
    for index, (since, gpus) in enumerate(waiting):
        pending += gpus
        last_at_this_time = index + 1 == len(waiting) or waiting[index + 1][0] != since
        if last_at_this_time:
            samples.append(Sample(since, float(pending), pending >= threshold))
    return samples


def _readiness_text(readiness: PoolReadiness) -> str:
    return (
        f"{readiness.ready_nodes} nodes GPU-ready, {readiness.coming_nodes} coming, "
        f"{len(readiness.failed_nodes)} failed"
    )

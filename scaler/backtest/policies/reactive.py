"""The reactive baseline: an HPA on current demand plus a cluster autoscaler.

The HPA part recommends ``ceil(demand / (throughput x target utilisation))`` replicas each
minute, scales up at once and scales down only to the highest recommendation of the last
``simulator.reactive_stabilization_seconds`` (the HPA's default scale-down stabilisation is
5 minutes). A minute without demand data keeps the previous recommendation, as an HPA whose
metric is unavailable does not scale. The cluster autoscaler part requests the nodes the
replicas need, counting nodes still booting as upcoming, and the simulator releases nodes after
the scale-down delay. Both obey the same lead times as every other policy.
"""

from __future__ import annotations

import math
from collections import deque
from typing import ClassVar

from scaler.backtest.policies.base import NodeSizer, PolicyContext, Targets
from scaler.backtest.trace import Observation
from scaler.core.capacity import replicas_for_value
from scaler.core.simulator import minutes_for
from scaler.settings import CapacityModel


class HpaRecommender:
    """The HPA's replica recommendation for one workload, with scale-down stabilisation."""

    def __init__(self, capacity: CapacityModel, stabilization_seconds: int, initial: int) -> None:
        self._capacity = capacity
        self._window = minutes_for(stabilization_seconds)
        self._recent: deque[tuple[int, int]] = deque()
        self.last_raw = initial

    def raw(self, demand: float) -> int:
        """Return the unstabilised recommendation for ``demand``; NaN keeps the last one."""
        if math.isnan(demand):
            return self.last_raw
        return replicas_for_value(demand, self._capacity)

    def recommend(self, minute: int, demand: float) -> int:
        """Record the recommendation for ``minute`` and return the stabilised one."""
        self.last_raw = self.raw(demand)
        recent = self._recent
        recent.append((minute, self.last_raw))
        while minute - recent[0][0] >= max(self._window, 1):
            recent.popleft()
        return max(value for _, value in recent)


def hpa_recommenders(context: PolicyContext) -> dict[str, HpaRecommender]:
    """Build one HPA per workload, primed with the last warm-up minute's demand."""
    settings = context.settings
    recommenders = {}
    for workload in settings.workloads:
        last = context.warmup.current_demand(workload.name)
        initial = workload.capacity.min_replicas
        if not math.isnan(last):
            initial = replicas_for_value(last, workload.capacity)
        recommenders[workload.name] = HpaRecommender(
            workload.capacity, settings.simulator.reactive_stabilization_seconds, initial
        )
    return recommenders


class ReactivePolicy:
    """HPA on current demand plus cluster-autoscaler node requests."""

    name: ClassVar[str] = "reactive"
    sees_future: ClassVar[bool] = False

    def __init__(self, context: PolicyContext) -> None:
        self._hpas = hpa_recommenders(context)
        self._sizer = NodeSizer(context.settings, context.fleet)

    def replicas(self, observation: Observation) -> dict[str, int]:
        """Return the HPA's stabilised replicas for the observation's minute."""
        return {
            name: hpa.recommend(observation.minute, observation.current_demand(name))
            for name, hpa in self._hpas.items()
        }

    def step(self, observation: Observation) -> Targets:
        replicas = self.replicas(observation)
        return Targets(nodes=self._sizer.nodes(replicas), replicas=replicas)

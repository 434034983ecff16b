"""The static baseline: a fleet sized once for the peak demand of the warm-up period.

It never changes and sees nothing of the simulated span, so a later peak higher than the
warm-up's is under-provisioned, as with a fleet sized by hand from last week's peak.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from scaler.backtest.policies.base import NodeSizer, PolicyContext, Targets
from scaler.backtest.trace import Observation
from scaler.core.capacity import replicas_for_value


class StaticPolicy:
    """Replicas and nodes for the warm-up's peak demand, held for the whole run."""

    name: ClassVar[str] = "static"
    sees_future: ClassVar[bool] = False

    def __init__(self, context: PolicyContext) -> None:
        replicas = {}
        for workload in context.settings.workloads:
            demand = context.warmup.demand(workload.name)
            observed = demand[~np.isnan(demand)]
            peak = float(observed.max()) if len(observed) else 0.0
            replicas[workload.name] = replicas_for_value(peak, workload.capacity)
        nodes = NodeSizer(context.settings, context.fleet).nodes(replicas)
        self._targets = Targets(nodes=nodes, replicas=replicas)

    def step(self, observation: Observation) -> Targets:
        return self._targets

"""The oracle: perfect foresight under the same lead times, node granularity and bounds.

It is the only policy that reads the future. At each minute it holds exactly the highest
requirement of the actual demand over its lead windows: replicas over the workload start phase,
nodes over node provisioning plus workload start (no margin, because it is never surprised).
The simulator then applies the same scale-down delay as for every policy. Missing demand
minutes take the last known demand.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from scaler.backtest.policies.base import PolicyContext, Targets
from scaler.backtest.policies.leads import pool_lead_minutes, workload_lead_minutes
from scaler.backtest.trace import Observation
from scaler.core.capacity import FloatArray, IntArray
from scaler.core.simulator import leading_max


def fill_forward(values: FloatArray) -> FloatArray:
    """Replace each NaN by the last value before it; NaN before any value becomes 0."""
    positions = np.where(np.isnan(values), -1, np.arange(len(values)))
    last = np.maximum.accumulate(positions) if len(values) else positions
    return np.where(last >= 0, values[np.maximum(last, 0)], 0.0)


class OraclePolicy:
    """Perfect foresight: the max requirement of the actual demand over each lead window."""

    name: ClassVar[str] = "oracle"
    sees_future: ClassVar[bool] = True

    def __init__(self, context: PolicyContext) -> None:
        if context.future is None:
            raise ValueError("the oracle policy needs the whole trace in PolicyContext.future")
        settings = context.settings
        demand = {name: fill_forward(values) for name, values in context.future.demand.items()}
        raw = context.fleet.replicas_for_demand(demand)
        placement = context.fleet.place(raw)
        self._replicas: dict[str, IntArray] = {
            name: leading_max(raw[name], workload_lead_minutes(settings, name)).astype(np.int64)
            for name in raw
        }
        self._nodes: dict[str, IntArray] = {
            pool.name: leading_max(
                placement.nodes[pool.name], pool_lead_minutes(settings, pool.name, margin=False)
            ).astype(np.int64)
            for pool in settings.pools
            if pool.kind == "burst"
        }

    def step(self, observation: Observation) -> Targets:
        minute = observation.minute
        return Targets(
            nodes={name: int(values[minute]) for name, values in self._nodes.items()},
            replicas={name: int(values[minute]) for name, values in self._replicas.items()},
        )

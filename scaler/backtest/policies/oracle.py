"""The oracle: perfect foresight under the same lead times, node granularity and bounds.

It is the only policy that reads the future. At each minute it holds exactly the highest
requirement of the actual demand over its lead windows: replicas over the workload start phase,
nodes over node provisioning plus workload start (no margin, because it is never surprised).
The simulator then applies the same scale-down delay as for every policy. Missing demand
minutes take the last known demand.

When the simulator draws lead times (``simulator.pools``, ``simulator.workloads``, failures or
stockouts), fixed lead windows are no lower bound, so the oracle also reads the draws
(``scaler.backtest.policies.foresight``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from scaler.backtest.policies.base import PolicyContext, Targets
from scaler.backtest.policies.foresight import foresight_targets
from scaler.backtest.policies.leads import pool_lead_minutes, workload_lead_minutes
from scaler.backtest.trace import Observation, Trace
from scaler.core.capacity import FloatArray, IntArray
from scaler.core.phases import lead_times_are_nominal
from scaler.core.simulator import initial_state, leading_max


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
        demand = {name: fill_forward(values) for name, values in context.future.demand.items()}
        self._nodes: dict[str, IntArray]
        self._replicas: dict[str, IntArray]
        if lead_times_are_nominal(context.settings):
            self._nodes, self._replicas = _lead_windows(context, demand)
        else:
            self._nodes, self._replicas = _foresight(context, context.future, demand)

    def step(self, observation: Observation) -> Targets:
        minute = observation.minute
        return Targets(
            nodes={name: int(values[minute]) for name, values in self._nodes.items()},
            replicas={name: int(values[minute]) for name, values in self._replicas.items()},
        )


def _lead_windows(
    context: PolicyContext, demand: dict[str, FloatArray]
) -> tuple[dict[str, IntArray], dict[str, IntArray]]:
    """Hold the max requirement over each fixed lead window of the whole trace."""
    settings = context.settings
    raw = context.fleet.replicas_for_demand(demand)
    placement = context.fleet.place(raw)
    replicas = {
        name: leading_max(raw[name], workload_lead_minutes(settings, name)).astype(np.int64)
        for name in raw
    }
    nodes = {
        pool.name: leading_max(
            placement.nodes[pool.name], pool_lead_minutes(settings, pool.name, margin=False)
        ).astype(np.int64)
        for pool in settings.pools
        if pool.kind == "burst"
    }
    return nodes, replicas


def _foresight(
    context: PolicyContext, trace: Trace, demand: dict[str, FloatArray]
) -> tuple[dict[str, IntArray], dict[str, IntArray]]:
    """Plan with the draws over the simulated span; pad the rest of the trace with its ends."""
    span = slice(trace.sim_start, trace.sim_end)
    last_warmup = {
        name: float(values[trace.sim_start - 1]) for name, values in trace.demand.items()
    }
    initial = initial_state(context.settings, context.fleet, last_warmup)
    simulated = {name: values[span] for name, values in demand.items()}
    nodes, replicas = foresight_targets(context.settings, context.fleet, simulated, initial)
    after = trace.minutes - trace.sim_end

    def padded(values: IntArray) -> IntArray:
        return np.pad(values, (trace.sim_start, after), mode="edge")

    return (
        {name: padded(values) for name, values in nodes.items()},
        {name: padded(values) for name, values in replicas.items()},
    )

"""The provisioning simulator: replay a policy's node and replica targets on a minute clock.

Model (docs/SIMULATOR.md states it in full):

- The clock ticks once a minute. Durations in seconds are rounded up to whole minutes.
- A burst pool bills ``max over the last scale-down delay`` of its node target, so nodes are
  billed from the minute they are requested and released once they have been unneeded for
  ``simulator.scale_down_delay_seconds``. The newest nodes are released first.
- A node is usable once it has been billed for the pool's ``node_provisioning_seconds``.
- A static pool has ``max_nodes`` nodes, billed and usable at every minute.
- Replicas run where a slot on a usable node exists (``Fleet.place``), up to the replica
  target. A replica serves once it has been running for ``workload_start_seconds``. The newest
  replicas are removed first.
- Before the first minute the fleet is in ``InitialState``: those nodes are usable and those
  replicas serve.

Because nodes and replicas are interchangeable and removed newest first, the k-th node is usable
at minute t exactly when at least k nodes were billed at every minute of [t - provisioning, t].
The same holds for serving replicas. So every series is a sliding maximum or minimum and the
whole simulation is a handful of numpy passes, with no per-minute Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scaler.core.capacity import Fleet, FloatArray, IntArray, replicas_for_value
from scaler.settings import Settings

MINUTE_SECONDS = 60

_Reduce = Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], npt.NDArray[np.float64]]


def minutes_for(seconds: int) -> int:
    """Convert a duration to whole clock minutes, rounding up."""
    return math.ceil(seconds / MINUTE_SECONDS)


def _sliding(
    values: npt.NDArray[np.float64], width: int, reduce: _Reduce
) -> npt.NDArray[np.float64]:
    """Reduce every run of ``width`` consecutive values (a sparse table: O(n log width))."""
    result = values
    span = 1
    while span * 2 <= width:
        result = reduce(result[:-span], result[span:])
        span *= 2
    shift = width - span
    return reduce(result[: len(result) - shift], result[shift:])


def trailing_max(values: npt.ArrayLike, window: int, before: float) -> npt.NDArray[np.float64]:
    """Return, per index t, the maximum of ``values`` over [t - window, t].

    Positions before the start count as ``before``.
    """
    array = np.asarray(values, dtype=np.float64)
    padded = np.concatenate([np.full(window, before, dtype=np.float64), array])
    return _sliding(padded, window + 1, np.maximum)


def trailing_min(values: npt.ArrayLike, window: int, before: float) -> npt.NDArray[np.float64]:
    """Return, per index t, the minimum of ``values`` over [t - window, t]."""
    array = np.asarray(values, dtype=np.float64)
    padded = np.concatenate([np.full(window, before, dtype=np.float64), array])
    return _sliding(padded, window + 1, np.minimum)


def leading_max(values: npt.ArrayLike, window: int) -> npt.NDArray[np.float64]:
    """Return, per index t, the maximum of ``values`` over [t, t + window].

    Past the end the last value is repeated.
    """
    array = np.asarray(values, dtype=np.float64)
    if len(array) == 0:
        return array
    padded = np.concatenate([array, np.full(window, array[-1], dtype=np.float64)])
    return _sliding(padded, window + 1, np.maximum)


@dataclass(frozen=True)
class InitialState:
    """The fleet before the first minute: usable nodes per burst pool, serving replicas."""

    nodes: Mapping[str, int]
    replicas: Mapping[str, int]


@dataclass(frozen=True)
class Simulation:
    """Per-minute series of one simulated run, one array per pool or workload.

    Targets are as applied, after clamping to the bounds. ``running_replicas`` have a slot on a
    usable node. ``serving_replicas`` have been running for the workload start phase.
    """

    node_targets: Mapping[str, IntArray]
    billed_nodes: Mapping[str, IntArray]
    usable_nodes: Mapping[str, IntArray]
    replica_targets: Mapping[str, IntArray]
    running_replicas: Mapping[str, IntArray]
    serving_replicas: Mapping[str, IntArray]
    serving_gpus: Mapping[str, IntArray]
    gpus_per_node: Mapping[str, int]
    price_per_node_hour: Mapping[str, float]

    @property
    def minutes(self) -> int:
        return len(next(iter(self.billed_nodes.values())))

    def billed_node_minutes(self, pool: str) -> int:
        """Return the integral of billed nodes over the run, in node-minutes."""
        return int(self.billed_nodes[pool].sum())

    def gpu_hours(self, pool: str) -> float:
        """Return billed GPU-hours: billed node-minutes x GPUs per node / 60."""
        return self.billed_node_minutes(pool) * self.gpus_per_node[pool] / MINUTE_SECONDS

    def cost(self, pool: str) -> float:
        """Return billed node-hours x the pool's price per node-hour."""
        return self.billed_node_minutes(pool) / MINUTE_SECONDS * self.price_per_node_hour[pool]


def shortfall_gpus(demand_gpus: FloatArray, serving_gpus: npt.ArrayLike) -> FloatArray:
    """Return max(0, demand - serving) per minute, or NaN where demand is missing."""
    serving = np.asarray(serving_gpus, dtype=np.float64)
    return np.where(np.isnan(demand_gpus), np.nan, np.maximum(demand_gpus - serving, 0.0))


def simulate(
    settings: Settings,
    fleet: Fleet,
    node_targets: Mapping[str, npt.ArrayLike],
    replica_targets: Mapping[str, npt.ArrayLike],
    initial: InitialState,
) -> Simulation:
    """Simulate targets given per minute: one node target per burst pool, one replica target
    per workload. Static pools need no target.
    """
    billed: dict[str, IntArray] = {}
    usable: dict[str, IntArray] = {}
    applied_nodes: dict[str, IntArray] = {}
    minutes = len(np.asarray(next(iter(replica_targets.values()))))
    delay = minutes_for(settings.simulator.scale_down_delay_seconds)
    for pool in settings.pools:
        if pool.kind == "static":
            fixed = np.full(minutes, pool.max_nodes, dtype=np.int64)
            applied_nodes[pool.name] = billed[pool.name] = usable[pool.name] = fixed
            continue
        target = np.clip(
            np.asarray(node_targets[pool.name], dtype=np.int64), pool.min_nodes, pool.max_nodes
        )
        _check_length(pool.name, target, minutes)
        start_nodes = min(max(initial.nodes.get(pool.name, 0), pool.min_nodes), pool.max_nodes)
        pool_billed = trailing_max(target, delay, start_nodes).astype(np.int64)
        provisioning = minutes_for(pool.node_provisioning_seconds)
        applied_nodes[pool.name] = target
        billed[pool.name] = pool_billed
        usable[pool.name] = trailing_min(pool_billed, provisioning, start_nodes).astype(np.int64)

    applied_replicas: dict[str, IntArray] = {}
    for workload in settings.workloads:
        capacity = workload.capacity
        target = np.asarray(replica_targets[workload.name], dtype=np.int64)
        _check_length(workload.name, target, minutes)
        applied_replicas[workload.name] = np.clip(
            target, capacity.min_replicas, capacity.max_replicas
        )
    placement = fleet.place(applied_replicas, available_nodes=usable)

    running: dict[str, IntArray] = {}
    serving: dict[str, IntArray] = {}
    serving_gpus: dict[str, IntArray] = {}
    for workload in settings.workloads:
        name = workload.name
        running[name] = placement.placed_replicas(name)
        start = minutes_for(workload.workload_start_seconds)
        serving[name] = trailing_min(running[name], start, initial.replicas.get(name, 0)).astype(
            np.int64
        )
        serving_gpus[name] = serving[name] * workload.capacity.gpus_per_replica

    return Simulation(
        node_targets=applied_nodes,
        billed_nodes=billed,
        usable_nodes=usable,
        replica_targets=applied_replicas,
        running_replicas=running,
        serving_replicas=serving,
        serving_gpus=serving_gpus,
        gpus_per_node={pool.name: pool.gpus_per_node for pool in settings.pools},
        price_per_node_hour={pool.name: pool.price_per_node_hour for pool in settings.pools},
    )


def initial_state(settings: Settings, fleet: Fleet, demand: Mapping[str, float]) -> InitialState:
    """Size the fleet for ``demand`` per workload as if it had run that way for a while.

    Missing demand (NaN or absent) gives the workload's min_replicas.
    """
    replicas: dict[str, int] = {}
    for workload in settings.workloads:
        value = demand.get(workload.name, math.nan)
        known = 0.0 if math.isnan(value) else value
        replicas[workload.name] = replicas_for_value(known, workload.capacity)
    placement = fleet.place(replicas)
    nodes = {name: int(count) for name, count in placement.nodes.items()}
    placed = {name: int(placement.placed_replicas(name)) for name in replicas}
    return InitialState(nodes=nodes, replicas=placed)


def _check_length(name: str, values: npt.NDArray[np.int64], minutes: int) -> None:
    if len(values) != minutes:
        raise ValueError(
            f"{name}: target series has {len(values)} minutes but the run has {minutes}; give "
            "every pool and workload a target for each minute"
        )

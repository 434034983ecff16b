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

Random provisioning (``simulator.pools``, ``simulator.workloads``, GPU-init failures, stockouts)
and billing granularities that do not divide a minute replace the sliding windows of that pool
or workload by per-position chains of draws (``scaler.core.positions`` and
``scaler.core.provisioning``). A run is seeded by ``simulator.seed`` and gives every policy the
same draws. With none of those settings, the deterministic model above applies unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from scaler.core.capacity import Fleet, FloatArray, IntArray, replicas_for_value
from scaler.core.phases import pool_phase, workload_phase
from scaler.core.positions import PositionDraws
from scaler.core.provisioning import NodeLog, ProvisioningEvents, run_pool, run_replicas
from scaler.settings import PoolSettings, Settings, WorkloadSettings

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

    Targets are as applied, after clamping to the bounds. ``requested_nodes`` are requested and
    not yet released, stockout-delayed ones included, and ``billed_nodes`` are the fulfilled
    ones. ``running_replicas`` have a slot on a usable node. ``serving_replicas`` have been
    running for the workload start phase. ``billed_node_seconds`` sums each node's billed
    lifetime after rounding to the billing granularity. ``events`` and ``node_logs`` exist for
    burst pools replayed through draws.
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
    requested_nodes: Mapping[str, IntArray] = field(default_factory=dict)
    billed_node_seconds: Mapping[str, int] = field(default_factory=dict)
    events: Mapping[str, ProvisioningEvents] = field(default_factory=dict)
    node_logs: Mapping[str, NodeLog] = field(default_factory=dict)

    @property
    def minutes(self) -> int:
        return len(next(iter(self.billed_nodes.values())))

    def billed_node_minutes(self, pool: str) -> float:
        """Return billed node-minutes: the integral of billed nodes, or with a billing
        granularity the sum of rounded lifetimes."""
        if pool in self.billed_node_seconds:
            return self.billed_node_seconds[pool] / MINUTE_SECONDS
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
    minutes = len(np.asarray(next(iter(replica_targets.values()))))
    pools = [
        _simulate_pool(settings, pool, node_targets, initial, minutes) for pool in settings.pools
    ]

    applied_replicas: dict[str, IntArray] = {}
    for workload in settings.workloads:
        capacity = workload.capacity
        target = np.asarray(replica_targets[workload.name], dtype=np.int64)
        _check_length(workload.name, target, minutes)
        applied_replicas[workload.name] = np.clip(
            target, capacity.min_replicas, capacity.max_replicas
        )
    usable = {pool.name: pool.usable for pool in pools}
    placement = fleet.place(applied_replicas, available_nodes=usable)

    running: dict[str, IntArray] = {}
    serving: dict[str, IntArray] = {}
    serving_gpus: dict[str, IntArray] = {}
    for workload in settings.workloads:
        name = workload.name
        running[name] = placement.placed_replicas(name)
        before = initial.replicas.get(name, 0)
        serving[name] = _serving_replicas(settings, workload, running[name], before)
        serving_gpus[name] = serving[name] * workload.capacity.gpus_per_replica

    return Simulation(
        node_targets={pool.name: pool.target for pool in pools},
        billed_nodes={pool.name: pool.billed for pool in pools},
        usable_nodes=usable,
        replica_targets=applied_replicas,
        running_replicas=running,
        serving_replicas=serving,
        serving_gpus=serving_gpus,
        gpus_per_node={pool.name: pool.gpus_per_node for pool in settings.pools},
        price_per_node_hour={pool.name: pool.price_per_node_hour for pool in settings.pools},
        requested_nodes={pool.name: pool.requested for pool in pools},
        billed_node_seconds={pool.name: pool.billed_seconds for pool in pools},
        events={pool.name: pool.events for pool in pools if pool.events is not None},
        node_logs={pool.name: pool.log for pool in pools if pool.log is not None},
    )


@dataclass(frozen=True)
class _PoolSeries:
    name: str
    target: IntArray
    requested: IntArray
    billed: IntArray
    usable: IntArray
    billed_seconds: int
    events: ProvisioningEvents | None = None
    log: NodeLog | None = None


def _simulate_pool(
    settings: Settings,
    pool: PoolSettings,
    node_targets: Mapping[str, npt.ArrayLike],
    initial: InitialState,
    minutes: int,
) -> _PoolSeries:
    """Replay one pool: by sliding windows when its node phase is fixed, else through draws."""
    if pool.kind == "static":
        fixed = np.full(minutes, pool.max_nodes, dtype=np.int64)
        seconds = pool.max_nodes * minutes * MINUTE_SECONDS
        return _PoolSeries(pool.name, fixed, fixed, fixed, fixed, seconds)
    simulator = settings.simulator
    target = np.clip(
        np.asarray(node_targets[pool.name], dtype=np.int64), pool.min_nodes, pool.max_nodes
    )
    _check_length(pool.name, target, minutes)
    start_nodes = min(max(initial.nodes.get(pool.name, 0), pool.min_nodes), pool.max_nodes)
    delay = minutes_for(simulator.scale_down_delay_seconds)
    requested = trailing_max(target, delay, start_nodes).astype(np.int64)

    phase = pool_phase(settings, pool)
    provisioning = phase.fixed_minutes()
    granularity = simulator.billing_granularity_seconds
    if provisioning is not None and MINUTE_SECONDS % granularity == 0:
        usable = trailing_min(requested, provisioning, start_nodes).astype(np.int64)
        seconds = int(requested.sum()) * MINUTE_SECONDS
        return _PoolSeries(pool.name, target, requested, requested, usable, seconds)
    draws = PositionDraws(phase, simulator.seed, _redraw_minutes(settings), minutes)
    run = run_pool(draws, requested, start_nodes, granularity)
    return _PoolSeries(
        pool.name,
        target,
        requested,
        run.billed,
        run.usable,
        run.billed_seconds,
        run.events,
        run.log,
    )


def _serving_replicas(
    settings: Settings, workload: WorkloadSettings, running: IntArray, before: int
) -> IntArray:
    """Replay one workload's start phase: a sliding window when fixed, else through draws."""
    phase = workload_phase(settings, workload)
    start = phase.fixed_minutes()
    if start is not None:
        return trailing_min(running, start, before).astype(np.int64)
    simulator = settings.simulator
    draws = PositionDraws(phase, simulator.seed, _redraw_minutes(settings), len(running))
    return run_replicas(draws, running, before)


def _redraw_minutes(settings: Settings) -> int:
    return minutes_for(settings.simulator.redraw_interval_seconds)


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

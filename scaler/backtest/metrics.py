"""Scaling-quality metrics of one simulated run, per workload, per pool and in total.

Shortfall is a workload's: the GPUs its demand needs at the SLO minus the GPUs serving it.
Cost is a pool's: billed node-hours and GPU-hours. Minutes with missing demand are left out
of shortfall, unserved share and SLO attainment, and counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaler.core.capacity import FloatArray
from scaler.core.simulator import MINUTE_SECONDS, Simulation, shortfall_gpus

# Shortfalls below this many GPUs are floating-point noise, not a missed SLO.
_GPU_TOLERANCE = 1e-9


@dataclass(frozen=True)
class WorkloadMetrics:
    """Service quality of one workload over the simulated minutes."""

    shortfall_gpu_minutes: float
    demand_gpu_minutes: float
    unserved_share: float
    slo_attainment: float
    missing_minutes: int
    replica_actions: int


@dataclass(frozen=True)
class PoolMetrics:
    """Cost of one pool over the simulated minutes."""

    gpu_hours: float
    node_hours: float
    cost: float
    node_actions: int
    max_billed_nodes: int


@dataclass(frozen=True)
class PeakWindow:
    """A span of high demand: minutes ``[first, last]`` of the simulated span."""

    first: int
    last: int
    start: pd.Timestamp
    end: pd.Timestamp  # exclusive
    peak_demand_gpus: float


@dataclass(frozen=True)
class RunMetrics:
    """All metrics of one policy's run. The totals sum workloads and pools."""

    workloads: Mapping[str, WorkloadMetrics]
    pools: Mapping[str, PoolMetrics]
    shortfall_gpu_minutes: float
    unserved_share: float
    slo_attainment: float
    gpu_hours: float
    cost: float
    scale_actions: int
    missing_minutes: int
    wall_seconds: float
    window_shortfall_gpu_minutes: tuple[float, ...]

    def row(self) -> dict[str, float]:
        """Return the totals as one flat row for a table."""
        return {
            "shortfall_gpu_minutes": self.shortfall_gpu_minutes,
            "unserved_share": self.unserved_share,
            "slo_attainment": self.slo_attainment,
            "gpu_hours": self.gpu_hours,
            "cost": self.cost,
            "scale_actions": float(self.scale_actions),
            "peak_window_shortfall_gpu_minutes": float(sum(self.window_shortfall_gpu_minutes)),
            "wall_seconds": self.wall_seconds,
        }


def count_actions(targets: np.ndarray, before: int) -> int:
    """Count the minutes whose target differs from the minute before (``before`` at start)."""
    return int(np.count_nonzero(np.diff(targets, prepend=before)))


def workload_metrics(
    demand_gpus: FloatArray, serving_gpus: np.ndarray, targets: np.ndarray, initial: int
) -> WorkloadMetrics:
    """Measure one workload's service from per-minute demand and serving GPUs."""
    short = shortfall_gpus(demand_gpus, serving_gpus)
    known = ~np.isnan(demand_gpus)
    shortfall = float(short[known].sum())
    demand = float(demand_gpus[known].sum())
    met = int(np.count_nonzero(short[known] <= _GPU_TOLERANCE))
    return WorkloadMetrics(
        shortfall_gpu_minutes=shortfall,
        demand_gpu_minutes=demand,
        unserved_share=shortfall / demand if demand > 0 else 0.0,
        slo_attainment=met / int(known.sum()) if known.any() else 1.0,
        missing_minutes=int((~known).sum()),
        replica_actions=count_actions(targets, initial),
    )


def pool_metrics(simulation: Simulation, pool: str, initial: int) -> PoolMetrics:
    """Measure one pool's cost and actions."""
    billed = simulation.billed_nodes[pool]
    return PoolMetrics(
        gpu_hours=simulation.gpu_hours(pool),
        node_hours=simulation.billed_node_minutes(pool) / MINUTE_SECONDS,
        cost=simulation.cost(pool),
        node_actions=count_actions(simulation.node_targets[pool], initial),
        max_billed_nodes=int(billed.max()) if len(billed) else 0,
    )


def summarize(
    simulation: Simulation,
    demand_gpus: Mapping[str, FloatArray],
    initial_nodes: Mapping[str, int],
    initial_replicas: Mapping[str, int],
    windows: Sequence[PeakWindow],
    wall_seconds: float,
) -> RunMetrics:
    """Compute every metric of one run."""
    workloads = {
        name: workload_metrics(
            demand,
            simulation.serving_gpus[name],
            simulation.replica_targets[name],
            initial_replicas.get(name, 0),
        )
        for name, demand in demand_gpus.items()
    }
    pools = {
        name: pool_metrics(simulation, name, initial_nodes.get(name, 0))
        for name in simulation.billed_nodes
    }
    shortfall = sum(m.shortfall_gpu_minutes for m in workloads.values())
    demand = sum(m.demand_gpu_minutes for m in workloads.values())
    return RunMetrics(
        workloads=workloads,
        pools=pools,
        shortfall_gpu_minutes=shortfall,
        unserved_share=shortfall / demand if demand > 0 else 0.0,
        slo_attainment=_joint_attainment(simulation, demand_gpus),
        gpu_hours=sum(m.gpu_hours for m in pools.values()),
        cost=sum(m.cost for m in pools.values()),
        scale_actions=sum(m.node_actions for m in pools.values())
        + sum(m.replica_actions for m in workloads.values()),
        missing_minutes=_minutes_all_missing(demand_gpus),
        wall_seconds=wall_seconds,
        window_shortfall_gpu_minutes=_window_shortfall(simulation, demand_gpus, windows),
    )


def _joint_attainment(simulation: Simulation, demand_gpus: Mapping[str, FloatArray]) -> float:
    """Share of minutes with some demand data in which no workload is short."""
    known_any = np.zeros(simulation.minutes, dtype=bool)
    short_any = np.zeros(simulation.minutes, dtype=bool)
    for name, demand in demand_gpus.items():
        short = shortfall_gpus(demand, simulation.serving_gpus[name])
        known_any |= ~np.isnan(demand)
        short_any |= np.nan_to_num(short) > _GPU_TOLERANCE
    if not known_any.any():
        return 1.0
    return float(np.count_nonzero(known_any & ~short_any) / np.count_nonzero(known_any))


def _minutes_all_missing(demand_gpus: Mapping[str, FloatArray]) -> int:
    missing = np.ones(len(next(iter(demand_gpus.values()))), dtype=bool)
    for demand in demand_gpus.values():
        missing &= np.isnan(demand)
    return int(missing.sum())


def _window_shortfall(
    simulation: Simulation, demand_gpus: Mapping[str, FloatArray], windows: Sequence[PeakWindow]
) -> tuple[float, ...]:
    total = np.zeros(simulation.minutes)
    for name, demand in demand_gpus.items():
        total += np.nan_to_num(shortfall_gpus(demand, simulation.serving_gpus[name]))
    return tuple(float(total[w.first : w.last + 1].sum()) for w in windows)


def total_demand_gpus(demand_gpus: Mapping[str, FloatArray]) -> FloatArray:
    """Sum demand over workloads per minute, with NaN only where every workload is missing."""
    stacked = np.vstack(list(demand_gpus.values()))
    total = np.nansum(stacked, axis=0)
    return np.where(np.all(np.isnan(stacked), axis=0), np.nan, total)


def find_peak_windows(
    demand_gpus: FloatArray,
    index: pd.DatetimeIndex,
    quantile: float,
    merge_gap_minutes: int,
) -> tuple[PeakWindow, ...]:
    """Find the spans where demand reaches its ``quantile``, merging spans closer than the gap."""
    known = demand_gpus[~np.isnan(demand_gpus)]
    if len(known) == 0:
        return ()
    threshold = float(np.quantile(known, quantile))
    above = np.nan_to_num(demand_gpus, nan=-np.inf) >= threshold
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts = list(np.flatnonzero(edges == 1))
    ends = list(np.flatnonzero(edges == -1) - 1)

    merged: list[tuple[int, int]] = []
    for first, last in zip(starts, ends, strict=True):
        if merged and first - merged[-1][1] - 1 < merge_gap_minutes:
            merged[-1] = (merged[-1][0], int(last))
        else:
            merged.append((int(first), int(last)))
    minute = pd.Timedelta(minutes=1)
    return tuple(
        PeakWindow(
            first=first,
            last=last,
            start=index[first],
            end=index[last] + minute,
            peak_demand_gpus=float(np.nanmax(demand_gpus[first : last + 1])),
        )
        for first, last in merged
    )

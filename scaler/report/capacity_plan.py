"""A capacity plan from one forecast per workload: peak windows, pool bounds, reserve and cost.

Every count comes from the planning arithmetic of ``scaler.core.capacity`` (demand to replicas,
replicas to nodes, static pools first). The plan places each forecast step three ways:

- *needed*: the planning-level quantile on a fleet whose burst pools have no node bounds and
  whose workloads have no ``max_replicas``, so it shows what demand needs whatever the config
  allows. A workload's extra nodes go to its first burst pool.
- *high*: the same at the forecast's highest level (P95 by default), for the recommended max.
- *held*: the planning-level quantile within the configured bounds, which is what peakcast
  would hold and what the cost is based on.

A peak window is a run of steps above the base capacity: some burst pool needs more nodes
than it keeps at every step anyway (its configured ``min_nodes`` or, when higher, the nodes the
needed placement uses at every step of the horizon), or some replicas find no node. The static
pools are always part of the base.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, DataError
from forecaster.forecast import Forecast
from forecaster.peaks import peak_windows
from scaler.core.capacity import Fleet, IntArray, Placement, demand_in_gpus
from scaler.report.model import CapacityPlan, PlanWindow, PoolPlan, ReservedCapacity
from scaler.settings import Settings

logger = logging.getLogger(__name__)

DAY = pd.Timedelta(days=1)

# Node and replica bound of the "needed" fleet: far above any real pool, small enough that
# slot arithmetic stays exact in int64.
_UNBOUNDED = 1_000_000


@dataclass(frozen=True)
class _Placed:
    """Replicas per workload and their placement at every forecast step."""

    replicas: Mapping[str, IntArray]
    placement: Placement

    def gpus_used(self, fleet: Fleet, pool: str) -> IntArray:
        """Return the GPUs the placed replicas use on ``pool`` per step."""
        total = np.zeros_like(next(iter(self.replicas.values())))
        for workload in fleet.workloads_on(pool):
            gpus = fleet.workloads[workload].capacity.gpus_per_replica
            total = total + self.placement.placed[workload, pool] * gpus
        return total


@dataclass(frozen=True)
class _Layouts:
    """The three placements of one forecast (see the module docstring) and the day blocks."""

    configured: Fleet
    unbounded: Fleet
    needed: _Placed
    high: _Placed
    held: _Placed
    blocks: list[slice]


def plan_capacity(
    settings: Settings, forecasts: Mapping[str, Forecast], *, reserve_quantile: float = 0.9
) -> CapacityPlan:
    """Build the capacity plan for ``forecasts`` (one per workload, all from the same cutoff).

    ``reserve_quantile`` is the quantile of the daily peaks that the reserve covers. Raises
    ``DataError`` when the forecasts do not share cutoff, step and horizon, or lack the
    planning level.
    """
    if not 0 < reserve_quantile <= 1:
        raise ConfigError("reserve_quantile", reserve_quantile, "a number in (0, 1]")
    first = _check_aligned(settings, forecasts)
    planning = settings.forecast.planning_level
    high = max(max(first.quantiles), planning)
    configured = Fleet(settings.pools, settings.workloads)
    unbounded = unbounded_fleet(settings)

    needed = _place(unbounded, forecasts, planning)
    layouts = _Layouts(
        configured=configured,
        unbounded=unbounded,
        needed=needed,
        high=_place(unbounded, forecasts, high),
        held=_place(configured, forecasts, planning),
        blocks=day_blocks(first.h, first.step),
    )
    pools = tuple(
        _pool_plan(settings, name, layouts, reserve_quantile) for name in configured.pools
    )
    static_gpus = sum(p.reserved_nodes * p.gpus_per_node for p in pools if p.kind == "static")
    burst_gpus = sum(p.reserved_nodes * p.gpus_per_node for p in pools if p.kind == "burst")
    held_total = np.sum(
        [
            needed.placement.nodes[name] * pool.gpus_per_node
            for name, pool in unbounded.pools.items()
        ],
        axis=0,
    )
    reserved = ReservedCapacity(
        quantile=reserve_quantile,
        daily_peak_gpus=tuple(int(held_total[block].max()) for block in layouts.blocks),
        static_gpus=int(static_gpus),
        burst_gpus=int(burst_gpus),
    )
    plan = CapacityPlan(
        cutoff=first.cutoff,
        step=first.step,
        planning_level=planning,
        high_level=high,
        index=first.index,
        windows=_windows(settings, unbounded, forecasts, needed, first),
        pools=pools,
        reserved=reserved,
        held_gpus={
            name: layouts.held.placement.nodes[name] * pool.gpus_per_node
            for name, pool in configured.pools.items()
        },
        needed_gpus={name: needed.gpus_used(unbounded, name) for name in unbounded.pools},
        notes=_notes(settings, pools, needed, layouts.high, high),
    )
    logger.info(
        "capacity plan from %s: %d peak windows, reserve %d GPUs (%d static, %d burst), "
        "cost %.2f per day",
        first.cutoff.isoformat(),
        len(plan.windows),
        reserved.total_gpus,
        reserved.static_gpus,
        reserved.burst_gpus,
        plan.cost_per_day,
    )
    return plan


def unbounded_fleet(settings: Settings) -> Fleet:
    """Return the fleet without burst node bounds and replica maxima (static pools as set)."""
    pools = [
        pool.model_copy(update={"min_nodes": 0, "max_nodes": _UNBOUNDED})
        if pool.kind == "burst"
        else pool
        for pool in settings.pools
    ]
    workloads = [
        w.model_copy(
            update={"capacity": w.capacity.model_copy(update={"max_replicas": _UNBOUNDED})}
        )
        for w in settings.workloads
    ]
    return Fleet(pools, workloads)


def day_blocks(h: int, step: pd.Timedelta) -> list[slice]:
    """Split ``h`` forecast steps into whole days, or one block when the horizon is shorter.

    Steps after the last whole day are left out, so every daily peak covers a full day.
    """
    per_day = max(1, int(DAY // step))
    days = h // per_day
    if days == 0:
        return [slice(0, h)]
    return [slice(day * per_day, (day + 1) * per_day) for day in range(days)]


def _check_aligned(settings: Settings, forecasts: Mapping[str, Forecast]) -> Forecast:
    missing = [w.name for w in settings.workloads if w.name not in forecasts]
    if missing:
        raise DataError(f"no forecast for workload(s) {', '.join(missing)}")
    first = forecasts[settings.workloads[0].name]
    level = settings.forecast.planning_level
    for workload in settings.workloads:
        forecast = forecasts[workload.name]
        if (forecast.cutoff, forecast.step, forecast.h) != (first.cutoff, first.step, first.h):
            raise DataError(
                f"the forecast of {workload.name!r} (cutoff {forecast.cutoff}, step "
                f"{forecast.step}, h {forecast.h}) does not match that of {first.name!r} "
                f"(cutoff {first.cutoff}, step {first.step}, h {first.h}). Forecast every "
                "workload from the same time"
            )
        if level not in forecast.quantiles:
            raise DataError(
                f"the forecast of {workload.name!r} has no quantile at the planning level "
                f"{level:g}. Add it to forecast.levels"
            )
    if first.h == 0:
        raise DataError(f"the forecast of {first.name!r} is empty (h = 0)")
    return first


def _place(fleet: Fleet, forecasts: Mapping[str, Forecast], level: float) -> _Placed:
    demand = {
        name: np.nan_to_num(np.maximum(forecasts[name].quantiles[level], 0.0))
        for name in fleet.workloads
    }
    replicas = fleet.replicas_for_demand(demand)
    return _Placed(replicas=replicas, placement=fleet.place(replicas))


def _pool_plan(
    settings: Settings, name: str, layouts: _Layouts, reserve_quantile: float
) -> PoolPlan:
    pool = settings.pool(name)
    gpus_used = layouts.needed.gpus_used(layouts.unbounded, name)
    need = layouts.needed.placement.nodes[name]
    if pool.kind == "static":
        recommended_min = recommended_max = peak = reserved = pool.max_nodes
        mean_nodes = float(pool.max_nodes)
    else:
        recommended_min = int(need.min())
        recommended_max = int(layouts.high.placement.nodes[name].max())
        peak = int(need.max())
        daily_peaks = [int(need[block].max()) for block in layouts.blocks]
        reserved = int(np.quantile(daily_peaks, reserve_quantile, method="higher"))
        mean_nodes = float(layouts.held.placement.nodes[name].mean())
    return PoolPlan(
        name=name,
        kind=pool.kind,
        gpus_per_node=pool.gpus_per_node,
        price_per_node_hour=pool.price_per_node_hour,
        configured_min_nodes=pool.min_nodes,
        configured_max_nodes=pool.max_nodes,
        recommended_min_nodes=recommended_min,
        recommended_max_nodes=recommended_max,
        peak_nodes=peak,
        reserved_nodes=reserved,
        mean_nodes=mean_nodes,
        peak_gpus_used=int(gpus_used.max()),
        mean_gpus_used=float(gpus_used.mean()),
    )


def _windows(
    settings: Settings,
    fleet: Fleet,
    forecasts: Mapping[str, Forecast],
    needed: _Placed,
    first: Forecast,
) -> tuple[PlanWindow, ...]:
    """Find the steps above the base capacity and size each window at its maximum."""
    above = np.zeros(first.h, dtype=np.int64)
    for pool in settings.pools:
        if pool.kind == "burst":
            nodes = needed.placement.nodes[pool.name]
            # The same floor as PoolPlan.base_nodes of a burst pool.
            base = max(pool.min_nodes, int(nodes.min()))
            above += np.maximum(nodes - base, 0)
    for unplaced in needed.placement.unplaced.values():
        above += unplaced
    series = pd.Series(above, index=first.index)
    gap = pd.Timedelta(seconds=settings.backtest.peak_merge_gap_seconds)
    level = settings.forecast.planning_level
    # The peak time is where the demand of all workloads, in GPUs, is highest.
    demand_gpus = np.sum(
        [
            demand_in_gpus(forecasts[name].quantiles[level], workload.capacity)
            for name, workload in fleet.workloads.items()
        ],
        axis=0,
    )

    windows = []
    for found in peak_windows(series, 0.0, first.step, merge_gap=gap):
        rows = slice(
            int(first.index.searchsorted(found.start)), int(first.index.searchsorted(found.end))
        )
        windows.append(
            PlanWindow(
                start=found.start,
                end=found.end,
                peak_time=first.index[rows.start + int(np.argmax(demand_gpus[rows]))],
                peak_demand={
                    name: float(forecasts[name].quantiles[level][rows].max())
                    for name in fleet.workloads
                },
                gpus={name: int(needed.gpus_used(fleet, name)[rows].max()) for name in fleet.pools},
                nodes={name: int(needed.placement.nodes[name][rows].max()) for name in fleet.pools},
            )
        )
    return tuple(windows)


def _notes(
    settings: Settings,
    pools: tuple[PoolPlan, ...],
    needed: _Placed,
    at_high: _Placed,
    high: float,
) -> tuple[str, ...]:
    notes = []
    for plan in pools:
        if plan.kind == "burst" and plan.recommended_max_nodes > plan.configured_max_nodes:
            notes.append(
                f"pool {plan.name}: the P{high * 100:g} forecast needs up to "
                f"{plan.recommended_max_nodes} nodes, above its max_nodes of "
                f"{plan.configured_max_nodes}. Raise max_nodes, or the demand above it goes "
                "unserved"
            )
    for workload in settings.workloads:
        peak = int(at_high.replicas[workload.name].max())
        if peak > workload.capacity.max_replicas:
            notes.append(
                f"workload {workload.name}: the P{high * 100:g} forecast needs up to {peak} "
                f"replicas, above its max_replicas of {workload.capacity.max_replicas}"
            )
        unplaced = needed.placement.unplaced[workload.name]
        if unplaced.any():
            steps = int(np.count_nonzero(unplaced))
            notes.append(
                f"workload {workload.name}: in {steps} forecast steps up to {int(unplaced.max())} "
                "replicas do not fit on its static pools and it has no burst pool"
            )
    return tuple(notes)

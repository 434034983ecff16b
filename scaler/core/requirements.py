"""The requirement schedule: replicas and nodes needed per forecast step, and lead windows.

Requirements come from each workload's forecast at ``forecast.planning_level``. Row ``i`` of a
schedule covers the model step ``[start + i * step, start + (i + 1) * step)``, the same grid as
the forecast it came from. With ``policy.workload_floor_fills_nodes`` a workload's replica
requirement is raised to every replica that fits on the nodes its own pools need in that row,
because those GPUs are billed whether they serve or not.

Lead time has two phases: node provisioning per pool (floor raised to GPUs allocatable) and
workload start per workload (pod scheduled to serving). The node floor held at ``now`` is the
maximum node requirement over ``[now, now + node phase + workload phase + margin]``. A shared
pool uses the longest workload phase of its workloads. The workload floor looks ahead over
``[now, now + workload phase]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecaster.forecast import Forecast
from scaler.core.capacity import Fleet, FloatArray, IntArray, Placement
from scaler.settings import Settings


def workload_lead_seconds(settings: Settings, workload_name: str) -> int:
    """Return how far the workload floor looks ahead: the workload start phase."""
    return settings.workload(workload_name).workload_start_seconds


def pool_lead_seconds(settings: Settings, pool_name: str, *, margin: bool = True) -> int:
    """Return how far a pool's node floor looks ahead.

    That is node provisioning, plus the longest workload start of the pool's workloads, plus
    ``policy.lead_time_margin_seconds`` unless ``margin`` is False (the oracle needs none).
    """
    pool = settings.pool(pool_name)
    starts = [w.workload_start_seconds for w in settings.workloads if pool_name in w.pools]
    lead = pool.node_provisioning_seconds + max(starts, default=0)
    if margin:
        lead += settings.policy.lead_time_margin_seconds
    return lead


@dataclass(frozen=True)
class WindowPeak:
    """The highest requirement inside one lead window and the forecast row that set it."""

    value: int
    row: int
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class Requirements:
    """Replicas per workload and nodes per pool for every step of a forecast horizon.

    ``demand`` is the forecast quantile (in the demand's unit) behind each row, and ``unplaced``
    counts the replicas that did not fit under the pools' max_nodes. ``replicas`` includes the
    replicas added to fill free slots (see ``fill_node_slots``). ``demand_replicas`` is what the
    demand alone needs, so it equals ``replicas`` when filling is off or adds nothing.
    """

    start: pd.Timestamp
    step: pd.Timedelta
    level: float
    demand: Mapping[str, FloatArray]
    replicas: Mapping[str, IntArray]
    nodes: Mapping[str, IntArray]
    unplaced: Mapping[str, IntArray]
    demand_replicas: Mapping[str, IntArray] | None = None

    @cached_property
    def rows(self) -> int:
        return len(next(iter(self.replicas.values())))

    @cached_property
    def end(self) -> pd.Timestamp:
        """End (exclusive) of the last row."""
        return self.start + self.rows * self.step

    def time_of(self, row: int) -> pd.Timestamp:
        """Return the start of ``row``."""
        return self.start + row * self.step

    def covers(self, now: pd.Timestamp) -> bool:
        """Tell whether the schedule still has a row at or after ``now``."""
        return now < self.end

    def window_peak(
        self, values: npt.NDArray[np.int64], now: pd.Timestamp, lead_seconds: int
    ) -> WindowPeak | None:
        """Return the maximum of ``values`` over rows meeting ``[now, now + lead]``.

        A window that ends before the first row uses the first row, because the schedule starts
        one model step after its forecast's cutoff. Returns None when the schedule ends before
        ``now``.
        """
        if not self.covers(now):
            return None
        step_ns = self.step.value
        offset_start = now.value - self.start.value
        offset_end = offset_start + lead_seconds * 1_000_000_000
        first = max(0, offset_start // step_ns)
        last = min(self.rows - 1, max(0, offset_end // step_ns))
        row = first + int(values[first : last + 1].argmax())
        end = now + pd.Timedelta(seconds=lead_seconds)
        return WindowPeak(value=int(values[row]), row=row, start=now, end=end)


def requirements_from_forecasts(
    settings: Settings, fleet: Fleet, forecasts: Mapping[str, Forecast]
) -> Requirements:
    """Build the requirement schedule from one forecast per workload at the planning level.

    All forecasts must share cutoff and step, as they do when one cycle predicts every workload
    from histories cut at the same time. Non-finite forecast values are rejected.
    """
    level = settings.forecast.planning_level
    first = _check_aligned(settings, forecasts)
    demand: dict[str, FloatArray] = {}
    for workload in settings.workloads:
        forecast = forecasts[workload.name]
        if level not in forecast.quantiles:
            known = ", ".join(f"{q:g}" for q in sorted(forecast.quantiles))
            raise ValueError(
                f"forecast of workload {workload.name!r} has no quantile at the planning level "
                f"{level:g}; it has {known}"
            )
        values = np.asarray(forecast.quantiles[level], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"forecast of workload {workload.name!r} contains non-finite values at level "
                f"{level:g}; the engine must return finite quantiles"
            )
        demand[workload.name] = np.maximum(values, 0.0)

    needed = fleet.replicas_for_demand(demand)
    placement = fleet.place(needed)
    replicas = needed
    if settings.policy.workload_floor_fills_nodes:
        replicas = fill_node_slots(fleet, placement, needed)
    return Requirements(
        start=first.cutoff + first.step,
        step=first.step,
        level=level,
        demand=demand,
        replicas=replicas,
        nodes=dict(placement.nodes),
        unplaced=dict(placement.unplaced),
        demand_replicas=needed,
    )


def fill_node_slots(
    fleet: Fleet, placement: Placement, needed: Mapping[str, IntArray]
) -> dict[str, IntArray]:
    """Return each workload's replicas raised to fill the nodes its exclusive pools need.

    A pool counts as exclusive when no other workload lists it. Its node requirement (a static
    pool's fixed size included) is billed whether its GPUs serve or not, so every slot on it
    gets a replica. Replicas placed on shared pools stay as the demand needs them. The result
    never exceeds ``max_replicas`` and never falls below ``needed``, so the node requirement
    does not change.
    """
    filled: dict[str, IntArray] = {}
    for name, workload in fleet.workloads.items():
        total = np.zeros_like(needed[name])
        for pool in workload.pools:
            if fleet.workloads_on(pool) == (name,):
                per_node = fleet.units_per_node[pool] // fleet.units_per_replica[name, pool]
                total = total + np.asarray(placement.nodes[pool], dtype=np.int64) * per_node
            else:
                total = total + placement.placed[name, pool]
        ceiling = np.minimum(total, workload.capacity.max_replicas)
        filled[name] = np.maximum(needed[name], ceiling).astype(np.int64)
    return filled


def _check_aligned(settings: Settings, forecasts: Mapping[str, Forecast]) -> Forecast:
    missing = [w.name for w in settings.workloads if w.name not in forecasts]
    if missing:
        raise ValueError(f"no forecast for workload(s) {', '.join(missing)}")
    first = forecasts[settings.workloads[0].name]
    for name, forecast in forecasts.items():
        if (forecast.cutoff, forecast.step, forecast.h) != (first.cutoff, first.step, first.h):
            raise ValueError(
                f"forecast of workload {name!r} (cutoff {forecast.cutoff}, step {forecast.step}, "
                f"h {forecast.h}) does not match {first.name!r} (cutoff {first.cutoff}, step "
                f"{first.step}, h {first.h}); predict every workload from the same cutoff"
            )
    if first.h == 0:
        raise ValueError(f"forecast of workload {first.name!r} is empty (h = 0)")
    return first

"""Floors at a widened planning level, for workloads whose forecast missed.

The requirement schedule is rebuilt with each missed workload's forecast at its widened level
in place of the planning level. The other workloads keep theirs, because they share pools. The
floors are the maxima over the same lead windows the policy uses, so a widened level reaches
the node floor a whole lead time ahead, not only the replica floor.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

import pandas as pd

from forecaster.forecast import Forecast, align_forecasts
from scaler.core.capacity import Fleet
from scaler.core.decision import FloorKind
from scaler.core.requirements import (
    pool_lead_seconds,
    requirements_from_forecasts,
    workload_lead_seconds,
)
from scaler.settings import Settings

logger = logging.getLogger(__name__)

SIGNAL = "forecast_miss"


@dataclass(frozen=True)
class WidenedFloor:
    kind: FloorKind
    name: str
    value: int
    reason: str


def widened_floors(
    settings: Settings,
    fleet: Fleet,
    forecasts: Mapping[str, Forecast],
    levels: Mapping[str, float],
    now: pd.Timestamp,
) -> tuple[list[WidenedFloor], str | None]:
    """Return the floors of widened workloads and their pools, or a problem sentence.

    ``levels`` maps each workload whose planning level is widened to that level.
    """
    if not levels:
        return [], None
    planning = settings.forecast.planning_level
    missing = [w.name for w in settings.workloads if w.name not in forecasts]
    if missing:
        return [], f"no forecast yet for workload(s) {', '.join(missing)}"
    swapped = {}
    for name, forecast in forecasts.items():
        level = levels.get(name, planning)
        if level not in forecast.quantiles:
            return [], f"the forecast of workload {name} has no quantile {level:g}"
        quantiles = {**forecast.quantiles, planning: forecast.quantiles[level]}
        swapped[name] = replace(forecast, quantiles=quantiles)
    aligned, problem = align_forecasts(swapped)
    if problem is not None:
        return [], problem
    try:
        requirements = requirements_from_forecasts(settings, fleet, aligned)
    except ValueError as error:
        return [], f"the widened requirement schedule could not be built: {error}"

    floors = []
    for name, level in levels.items():
        peak = requirements.window_peak(
            requirements.replicas[name], now, workload_lead_seconds(settings, name)
        )
        if peak is None:
            return [], f"the forecast of workload {name} ends before {now.isoformat()}"
        reason = f"forecast missed: planning at P{level * 100:g} needs {peak.value} replicas"
        floors.append(WidenedFloor("workload", name, peak.value, reason))
    pools = {pool for name in levels for pool in settings.workload(name).pools}
    for pool in sorted(pools):
        if settings.pool(pool).kind == "static":
            continue
        peak = requirements.window_peak(
            requirements.nodes[pool], now, pool_lead_seconds(settings, pool)
        )
        if peak is None:
            continue
        widened = ", ".join(f"{n} at P{lv * 100:g}" for n, lv in sorted(levels.items()))
        reason = f"forecast missed: planning {widened} needs {peak.value} nodes"
        floors.append(WidenedFloor("pool", pool, peak.value, reason))
    return floors, None

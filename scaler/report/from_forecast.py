"""Fill the report model from one forecast per workload: the capacity-planning report."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from forecaster.forecast import Forecast
from forecaster.history import History
from scaler.core.policy import assess_history
from scaler.report.capacity_plan import plan_capacity
from scaler.report.model import CapacityPlan, DemandView, Report
from scaler.report.settings_view import lead_times, pool_infos, workload_infos
from scaler.report.summary import forecast_summary
from scaler.settings import Settings

logger = logging.getLogger(__name__)

# The demand plot shows at least this much history before the forecast.
MIN_HISTORY_SHOWN = pd.Timedelta(days=7)


def forecast_report(
    settings: Settings,
    histories: Mapping[str, History],
    forecasts: Mapping[str, Forecast],
    *,
    source: str,
    reserve_quantile: float = 0.9,
    at: pd.Timestamp | None = None,
) -> Report:
    """Build the capacity-planning report from ``forecasts`` and the histories they came from.

    ``at`` is the time the report is made at, which the data of each workload is judged at as
    a live cycle would judge it (``scaler.core.policy.assess_history``). Unset, it is the end
    of the newest history step, which is the ``--at`` time of ``peakcast report`` on a CSV
    trace, or the plan's start when every history is empty.
    """
    plan = plan_capacity(settings, forecasts, reserve_quantile=reserve_quantile)
    if at is None:
        at = _newest_step_end(histories, plan.start)
    data = [assess_history(histories[w.name], at, settings) for w in settings.workloads]
    demand = tuple(
        _demand_view(histories[w.name], forecasts[w.name], w.demand.unit, plan)
        for w in settings.workloads
    )
    notes = [f"{name}: {note}" for name, forecast in forecasts.items() for note in forecast.notes]
    notes += list(plan.notes)
    notes.append(
        "Lead times are the configured values. Reports do not read measured lead times yet."
    )
    return Report(
        kind="forecast",
        title="peakcast capacity plan",
        source=source,
        timezone=settings.timezone,
        start=plan.start,
        end=plan.end,
        pools=pool_infos(settings),
        workloads=workload_infos(settings),
        lead_times=lead_times(settings),
        demand=demand,
        summary=forecast_summary(settings, forecasts, plan, data=data, at=at),
        plan=plan,
        notes=tuple(notes),
    )


def _newest_step_end(histories: Mapping[str, History], default: pd.Timestamp) -> pd.Timestamp:
    # NOTE: a Thanos sample is labelled by its window's end, so for a Thanos history this is
    # up to one step after the time the history was read at. Data ages then read up to one
    # step older than a live cycle would see them. Pass ``at`` to judge at the exact time.
    ends = [h.end + h.step for h in histories.values() if len(h.values)]
    return max(ends, default=default)


def _demand_view(history: History, forecast: Forecast, unit: str, plan: CapacityPlan) -> DemandView:
    shown = max(MIN_HISTORY_SHOWN, plan.end - plan.start)
    values = history.values.loc[forecast.cutoff + forecast.step - shown :]
    return DemandView(
        workload=forecast.name,
        unit=unit,
        history=values,
        forecast=forecast.frame(),
        forecast_label=f"forecast from {forecast.cutoff + forecast.step:%Y-%m-%d %H:%M} UTC",
        model=forecast.model,
        spans=tuple((window.start, window.end) for window in plan.windows),
    )

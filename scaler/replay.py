"""Plan on a trace at a past timestamp: the dry-run behind ``peakcast plan --at``.

The floors held at ``at`` depend on earlier cycles: the stabilisation window, the per-cycle
scale-down step and how long data has been missing. So ``plan_at`` replays peakcast's cycles
over the trace up to ``at`` and returns the decision of the cycle at ``at``. Every history is cut at
``at`` first, so nothing after it can leak into the decision.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

import pandas as pd

from forecaster.history import History
from scaler.backtest.forecasting import ForecastEngine, default_engine_factory
from scaler.backtest.planner import PeakcastPlanner
from scaler.backtest.trace import visible_cutoff
from scaler.core.capacity import Fleet
from scaler.core.decision import CycleDecision, DataStatus
from scaler.core.policy import assess_history
from scaler.settings import Settings

logger = logging.getLogger(__name__)


def to_utc(at: pd.Timestamp, timezone: str) -> pd.Timestamp:
    """Return ``at`` in UTC. A timestamp without a zone is read in ``timezone``."""
    stamp = pd.Timestamp(at)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(timezone)
    return stamp.tz_convert("UTC")


def replay_start(
    settings: Settings, histories: Mapping[str, History], at: pd.Timestamp
) -> pd.Timestamp:
    """Return when the replay before ``at`` starts.

    It starts early enough to fill the stabilisation window and the missing-data hold, measured
    back from ``at`` or from the newest sample when data stopped earlier (so a gap is entered
    with the floors decided before it). It never starts more than ``forecast.history_seconds``
    before ``at``, nor before the first sample.
    """
    policy = settings.policy
    lookback = pd.Timedelta(
        seconds=max(policy.stabilization_window_seconds, policy.missing_data_hold_seconds)
        + settings.backtest.replan_interval_seconds
    )
    newest = [h.last_observed() for h in histories.values()]
    anchor = min([at, *[stamp for stamp in newest if stamp is not None]])
    start = anchor - lookback
    start = max(start, at - pd.Timedelta(seconds=settings.forecast.history_seconds))
    firsts = [h.start for h in histories.values() if len(h.values)]
    if firsts:
        start = max(start, min(firsts))
    return min(start, at)


def plan_at(
    settings: Settings,
    histories: Mapping[str, History],
    at: pd.Timestamp,
    *,
    engine: ForecastEngine | None = None,
    log_level: int = logging.INFO,
) -> CycleDecision:
    """Return the decision peakcast would make at ``at`` on ``histories`` (one per workload).

    Cycles run every ``policy.cycle_interval_seconds`` and forecasts are refreshed every
    ``backtest.replan_interval_seconds``, both counted back from ``at``. Earlier cycles are
    logged at DEBUG and the cycle at ``at`` at ``log_level``. When data is missing around
    ``at`` the decision keeps the floors and its ``data`` explains coverage and staleness. The
    notes of the forecasts behind the decision (a cold start, low coverage, a model that fell
    back) are appended to each workload's ``data`` reason.
    """
    at = to_utc(at, settings.timezone)
    missing = [w.name for w in settings.workloads if w.name not in histories]
    if missing:
        raise ValueError(f"no history for workload(s) {', '.join(missing)}")
    cut = {w.name: histories[w.name].until(at) for w in settings.workloads}
    if engine is None:
        engine = default_engine_factory()(settings.forecast)

    fleet = Fleet(settings.pools, settings.workloads)
    planner = PeakcastPlanner(settings, fleet, engine, log_level=logging.DEBUG, keep_forecasts=True)
    cycle = pd.Timedelta(seconds=settings.policy.cycle_interval_seconds)
    replan = pd.Timedelta(seconds=settings.backtest.replan_interval_seconds)
    start = replay_start(settings, cut, at)
    cycles = int((at - start) // cycle)
    logger.debug("plan at %s: replaying %d cycles from %s", at.isoformat(), cycles, start)

    decision: CycleDecision | None = None
    for k in range(cycles, -1, -1):
        now = at - k * cycle
        visible = {
            name: history.until(visible_cutoff(now, history.step)) for name, history in cut.items()
        }
        if k == cycles or (at - now) % replan == pd.Timedelta(0):
            planner.replan(now, visible)
        if k == 0:
            planner.log_level = log_level
        data = [assess_history(visible[w.name], now, settings) for w in settings.workloads]
        decision = planner.cycle(now, data)
    if decision is None:  # the loop always runs the cycle at ``at``
        raise ValueError(f"no cycle was run at {at}")
    if planner.forecast_problem is None and planner.forecasts:
        notes = {name: forecast.notes for name, forecast in planner.forecasts[-1].items()}
        noted = tuple(
            _with_notes(status, notes.get(status.workload, ())) for status in decision.data
        )
        decision = replace(decision, data=noted)
    return decision


def _with_notes(status: DataStatus, notes: tuple[str, ...]) -> DataStatus:
    """Append the forecast's notes to ``status.reason``, so a fallback is not silent."""
    if not notes:
        return status
    text = "; ".join(f"forecast: {note}" for note in notes)
    return replace(status, reason=f"{status.reason}; {text}" if status.reason else text)

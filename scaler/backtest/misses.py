"""Forecast misses found while replaying a trace: the contract the backtest and reports share.

A miss is what the live fast loop records (``scaler.misses``): demand above the forecast's
upper quantile without a break for ``miss_after_seconds``. In a backtest it is found by
stepping the same state machine once per simulated minute, with that minute's demand and the
upper quantile of the newest forecast available at that minute.

Every workload is checked, whether or not it configures ``signals.demand_above_forecast``. The
upper quantile and the rule come from that signal's settings when it is configured, and from
the defaults otherwise, as ``compared_level`` and ``miss_rule`` describe. This replay only
records misses, after every policy has run. It changes no forecast (there is no early refit)
and no policy's floors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.forecast import Forecast
from scaler.backtest.trace import MINUTE
from scaler.core.capacity import FloatArray
from scaler.misses import MissRule, MissState, step
from scaler.settings import Settings
from scaler.signals.demand_above_forecast import forecast_at, upper_level
from scaler.signals.settings import ForecastMissSettings


@dataclass(frozen=True)
class BacktestMiss:
    """One forecast miss of one workload in a backtest.

    ``above_since`` is when demand went above the upper quantile, ``at`` when the miss was
    recorded (``miss_after_seconds`` later), ``level`` the planning level after it, and
    ``demand`` and ``upper`` the values compared at ``at``, in the workload's metric unit.
    """

    workload: str
    above_since: pd.Timestamp
    at: pd.Timestamp
    level: float
    demand: float
    upper: float


# Misses per workload, in time order; a workload without misses maps to an empty tuple.
MissesByWorkload = Mapping[str, tuple[BacktestMiss, ...]]


@dataclass(frozen=True)
class MissReplay:
    """Misses per workload and, per workload, the simulated minutes with demand above the upper
    quantile (a minute without demand or without a forecast counts as not above)."""

    misses: MissesByWorkload
    minutes_above: Mapping[str, int]


def miss_rule(settings: Settings, workload: str) -> MissRule:
    """Build a workload's miss rule from ``signals.demand_above_forecast.misses``.

    A workload without that signal gets the ``ForecastMissSettings`` defaults.
    """
    signals = settings.workload(workload).signals
    misses = ForecastMissSettings()
    if signals is not None and signals.demand_above_forecast is not None:
        misses = signals.demand_above_forecast.misses
    forecast = settings.forecast
    return MissRule.from_settings(misses, forecast.planning_level, forecast.levels)


def signal_level(settings: Settings, workload: str) -> float | None:
    """Return ``signals.demand_above_forecast.level`` of a workload, or None when unset."""
    signals = settings.workload(workload).signals
    if signals is None or signals.demand_above_forecast is None:
        return None
    return signals.demand_above_forecast.level


def compared_level(settings: Settings, workload: str, forecast: Forecast | None = None) -> float:
    """Return the upper quantile compared with, as the live signal picks it.

    That is the signal's ``level`` when set, else the forecast's highest quantile. Without a
    forecast it is the highest of ``forecast.levels``, which every forecast contains.
    """
    level = signal_level(settings, workload)
    if forecast is not None:
        return upper_level(forecast, level)
    return level if level is not None else max(settings.forecast.levels)


def upper_per_minute(
    settings: Settings,
    workload: str,
    start: pd.Timestamp,
    minutes: int,
    forecasts: Sequence[Forecast],
    made_at: Sequence[pd.Timestamp],
) -> FloatArray:
    """Return the upper quantile at each minute from ``start``, from the newest forecast made at
    or before that minute.

    ``made_at[k]`` is when ``forecasts[k]`` was made, in increasing order. A minute before the
    first forecast, past the horizon of the newest one, or whose forecast lacks the compared
    quantile is NaN, which the state machine takes as no observation.
    """
    if len(forecasts) != len(made_at):
        raise ValueError(
            f"{len(forecasts)} forecasts but {len(made_at)} forecast times; pass one time each"
        )
    upper = np.full(minutes, math.nan)
    times = pd.date_range(start, periods=minutes, freq=MINUTE).as_unit("ns")
    # Minute m belongs to the newest forecast k with made_at[k] <= start + m.
    made_ns = np.array([pd.Timestamp(at).as_unit("ns").value for at in made_at], dtype=np.int64)
    if np.any(np.diff(made_ns) < 0):
        raise ValueError("forecast times must be in increasing order, one per replan")
    first_minute = np.searchsorted(times.asi8, made_ns, side="left")
    bounds = [*first_minute.tolist(), minutes]
    for k, forecast in enumerate(forecasts):
        begin, end = bounds[k], bounds[k + 1]
        if begin >= end:
            continue
        level = compared_level(settings, workload, forecast)
        if level in forecast.quantiles:
            upper[begin:end] = forecast_at(forecast, level, times[begin:end])
    return upper


def misses_in_series(
    workload: str,
    rule: MissRule,
    start: pd.Timestamp,
    demand: FloatArray,
    upper: FloatArray,
) -> tuple[BacktestMiss, ...]:
    """Step ``scaler.misses.step`` once per minute from ``start`` and collect the misses.

    ``demand`` and ``upper`` are per minute in one unit. NaN in either is no observation, which
    restarts both timers.
    """
    values = np.asarray(demand, dtype=np.float64)
    bounds = np.asarray(upper, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        above = values > bounds
    above_minutes = np.flatnonzero(above)
    state = MissState()
    found: list[BacktestMiss] = []
    minute = 0
    while minute < len(values):
        # In the resting state (no widened level, no running timer) a minute that is not above
        # leaves the state unchanged, so the loop jumps to the next minute above.
        if _resting(state) and not above[minute]:
            position = int(np.searchsorted(above_minutes, minute))
            if position == len(above_minutes):
                break
            minute = int(above_minutes[position])
        now = start + minute * MINUTE
        observed, bound = float(values[minute]), float(bounds[minute])
        result = step(state, rule, now, observed, bound)
        if result.missed:
            since = state.above_since if state.above_since is not None else now
            found.append(BacktestMiss(workload, since, now, result.level, observed, bound))
        state = result.state
        minute += 1
    return tuple(found)


def _resting(state: MissState) -> bool:
    return state.step == 0 and state.above_since is None and state.within_since is None


def find_misses(
    settings: Settings,
    start: pd.Timestamp,
    demand: Mapping[str, FloatArray],
    forecasts: Sequence[Mapping[str, Forecast]],
    made_at: Sequence[pd.Timestamp],
) -> MissReplay:
    """Find every workload's forecast misses over the minutes from ``start``.

    ``demand`` is per-minute demand per workload in its metric unit (the trace's demand before
    conversion to GPUs), NaN where missing. ``forecasts`` contains one mapping of workload to
    forecast per replan, made at the matching time in ``made_at``.
    """
    misses: dict[str, tuple[BacktestMiss, ...]] = {}
    minutes_above: dict[str, int] = {}
    for workload in settings.workloads:
        name = workload.name
        values = np.asarray(demand[name], dtype=np.float64)
        upper = upper_per_minute(
            settings,
            name,
            start,
            len(values),
            [replan[name] for replan in forecasts],
            made_at,
        )
        with np.errstate(invalid="ignore"):
            minutes_above[name] = int(np.count_nonzero(values > upper))
        misses[name] = misses_in_series(name, miss_rule(settings, name), start, values, upper)
    return MissReplay(misses, minutes_above)

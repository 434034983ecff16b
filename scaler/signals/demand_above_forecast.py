"""Signal: live demand above the forecast's upper quantile.

Live demand comes from Thanos over the hysteresis window, in the demand's unit (the query's
value times ``demand.scale``). Each sample is compared with the upper quantile of the forecast
row that covers its time. A sample that no forecast row covers is missing. While the signal
holds, the floor requested is the replicas the newest live demand needs.

The same comparison at ``now`` feeds forecast-miss handling (``scaler.misses``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from forecaster.forecast import Forecast
from forecaster.sources.thanos_http import QueryClient
from scaler.core.capacity import replicas_for_value
from scaler.settings import WorkloadSettings
from scaler.signals.base import Reading, Sample, SignalKey, SignalUnavailableError
from scaler.signals.settings import DemandAboveForecastSignalSettings
from scaler.signals.thanos_window import read_window, window_seconds

logger = logging.getLogger(__name__)

NAME = "demand_above_forecast"

ForecastProvider = Callable[[str], Forecast | None]


def upper_level(forecast: Forecast, level: float | None) -> float:
    """Return the level compared with: ``level``, or the forecast's highest quantile."""
    if level is not None:
        return level
    return max(forecast.quantiles)


def forecast_at(forecast: Forecast, level: float, times: pd.DatetimeIndex) -> np.ndarray:
    """Return the forecast quantile of the row that covers each time; NaN outside the horizon.

    Row ``i`` covers ``[cutoff + (i + 1) x step, cutoff + (i + 2) x step)``.
    """
    values = np.asarray(forecast.quantiles[level], dtype=float)
    first = forecast.cutoff + forecast.step
    rows = np.floor((times - first) / forecast.step).astype(int)
    inside = (rows >= 0) & (rows < forecast.h)
    result = np.full(len(times), math.nan)
    result[inside] = values[rows[inside]]
    return result


class DemandAboveForecastSignal:
    """Compares a workload's live demand from Thanos with its newest forecast."""

    cooldown_seconds = 0

    def __init__(
        self,
        client: QueryClient,
        workload: WorkloadSettings,
        settings: DemandAboveForecastSignalSettings,
        forecasts: ForecastProvider,
        params: Mapping[str, str],
    ) -> None:
        self.key = SignalKey(NAME, "workload", workload.name)
        self.hysteresis = settings.hysteresis
        self._client = client
        self._workload = workload
        self._settings = settings
        self._forecasts = forecasts
        self._params = params
        self._query = settings.query or workload.demand.series
        self._window = window_seconds(settings.hysteresis, settings.sample_step_seconds)

    def read(self, now: pd.Timestamp) -> Reading:
        name = self._workload.name
        forecast = self._forecasts(name)
        if forecast is None:
            raise SignalUnavailableError(f"workload {name}: no forecast to compare demand with")
        level = upper_level(forecast, self._settings.level)
        if level not in forecast.quantiles:
            raise SignalUnavailableError(
                f"workload {name}: the forecast has no quantile {level:g}; it has "
                f"{', '.join(f'{q:g}' for q in sorted(forecast.quantiles))}"
            )
        demand = read_window(
            self._client,
            self._query,
            now,
            window=self._window,
            step_seconds=self._settings.sample_step_seconds,
            params=self._params,
            description=f"workload {name} live demand",
            key=f"workloads.{name}.signals.demand_above_forecast.query",
        )
        demand = demand * self._workload.demand.scale
        upper = forecast_at(forecast, level, pd.DatetimeIndex(demand.index))
        samples = tuple(
            _sample(at, value, bound)
            for at, value, bound in zip(demand.index, demand.to_numpy(), upper, strict=True)
        )
        newest, bound = float(demand.iloc[-1]), float(upper[-1])
        capacity = self._workload.capacity

        def floor_for(current: int) -> int:
            if not math.isfinite(newest):
                return current
            return replicas_for_value(newest, capacity)

        unit = self._workload.demand.unit
        detail = f"P{level * 100:g} forecast at now is {bound:.4g} {unit}"
        return Reading(samples, newest, bound, unit, floor_for, detail)


def _sample(at: pd.Timestamp, value: float, bound: float) -> Sample:
    if not (math.isfinite(value) and math.isfinite(bound)):
        return Sample.missing(at)
    return Sample(at, float(value), float(value) > float(bound))

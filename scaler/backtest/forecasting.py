"""The forecast schedule of a replay: refit on ``forecast.refit_interval_seconds``, else update.

The engine is anything with the ``forecaster.engine`` contract. It is passed in, so tests can use
a small stand-in, and the backtest imports the real engine only when it runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Protocol

import pandas as pd

from forecaster.errors import MissingDataError
from forecaster.forecast import Forecast
from forecaster.history import History
from forecaster.settings import ForecastSettings
from scaler.settings import Settings


class FittedForecaster(Protocol):
    """A fitted forecaster of one series (the contract of ``forecaster.engine``)."""

    def update(self, history: History) -> FittedForecaster: ...

    def predict(self, h: int | None = None) -> Forecast: ...


class ForecastEngine(Protocol):
    """A forecast engine: it fits one series, the expensive, scheduled step."""

    def fit(self, history: History) -> FittedForecaster: ...


EngineFactory = Callable[[ForecastSettings], ForecastEngine]


def default_engine_factory() -> EngineFactory:
    """Return ``forecaster.engine.ForecastEngine``, imported on first use."""
    from forecaster import engine

    factory: EngineFactory = engine.ForecastEngine
    return factory


def horizon_steps(settings: ForecastSettings) -> int:
    """Return the forecast horizon ``h`` in model steps."""
    return math.ceil(settings.horizon_seconds / settings.step_seconds)


class ForecastSchedule:
    """One fitted forecaster per workload, refitted when due and updated otherwise."""

    def __init__(self, settings: Settings, engine: ForecastEngine) -> None:
        self._settings = settings
        self._engine = engine
        self._fitted: dict[str, FittedForecaster] = {}
        self._fitted_at: dict[str, pd.Timestamp] = {}
        self._refit = pd.Timedelta(seconds=settings.forecast.refit_interval_seconds)
        self._window = pd.Timedelta(seconds=settings.forecast.history_seconds)
        self._h = horizon_steps(settings.forecast)

    def predict(self, now: pd.Timestamp, histories: Mapping[str, History]) -> dict[str, Forecast]:
        """Forecast every workload from its history, which must already be cut at ``now``.

        Raises the engine's ``DataError`` (for example ``InsufficientHistoryError``) unchanged.
        """
        forecasts: dict[str, Forecast] = {}
        for workload in self._settings.workloads:
            name = workload.name
            history = histories[name]
            if len(history.values) == 0:
                raise MissingDataError(f"workload {name!r}: no history sample before {now}")
            recent = history.between(now - self._window, history.end)
            fitted_at = self._fitted_at.get(name)
            if name not in self._fitted or fitted_at is None or now - fitted_at >= self._refit:
                self._fitted[name] = self._engine.fit(recent)
                self._fitted_at[name] = now
            else:
                self._fitted[name] = self._fitted[name].update(recent)
            forecasts[name] = self._fitted[name].predict(self._h)
        return forecasts

"""Rolling-origin evaluation: forecasts from several cutoffs scored against what happened.

Each forecast is made from ``history.until`` its cutoff, so no value after the cutoff can reach
it. Between refits the engine's ``update`` moves the fitted model to the next cutoff, as the
service does between scheduled fits. Metrics:

- MASE: mean absolute error over the in-sample mean absolute error of seasonal naive on the
  training history (the longest configured season it contains twice, else lag 1);
- pinball loss at a level, divided by the same scale so that series of different size compare;
- coverage: the share of actuals at or below each quantile.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.aggregate import complete_steps
from forecaster.engine import FittedForecaster, ForecastEngine
from forecaster.forecast import Forecast
from forecaster.history import History
from forecaster.seasons import season_steps

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationWindow:
    """One forecast, the actuals of its horizon (NaN where missing) and its MASE scale."""

    forecast: Forecast
    actual: np.ndarray
    scale: float

    @property
    def cutoff(self) -> pd.Timestamp:
        return self.forecast.cutoff


@dataclass(frozen=True)
class Evaluation:
    """The windows of one rolling-origin run and the metrics over all of them."""

    model: str
    windows: tuple[EvaluationWindow, ...]

    def mase(self) -> float:
        """Return the mean over windows of MAE divided by the window's seasonal-naive scale."""
        values = [
            np.nanmean(np.abs(w.actual - w.forecast.point)) / w.scale
            for w in self.windows
            if np.isfinite(w.actual).any() and w.scale > 0
        ]
        return float(np.mean(values)) if values else float("nan")

    def pinball(self, level: float, scaled: bool = True) -> float:
        """Return the mean pinball loss of the quantile at ``level`` (scaled by MASE scale)."""
        losses = []
        for window in self.windows:
            loss = pinball_loss(window.actual, window.forecast.quantiles[level], level)
            if scaled:
                loss = loss / window.scale if window.scale > 0 else float("nan")
            losses.append(loss)
        finite = [loss for loss in losses if np.isfinite(loss)]
        return float(np.mean(finite)) if finite else float("nan")

    def coverage(self, level: float) -> float:
        """Return the share of observed actuals at or below the quantile at ``level``."""
        hits = []
        for window in self.windows:
            observed = np.isfinite(window.actual)
            hits.append(window.actual[observed] <= window.forecast.quantiles[level][observed])
        joined = np.concatenate(hits) if hits else np.array([])
        return float(joined.mean()) if len(joined) else float("nan")


def pinball_loss(actual: np.ndarray, quantile: np.ndarray, level: float) -> float:
    """Return the mean pinball (quantile) loss over observed actuals; NaN when none is."""
    observed = np.isfinite(actual)
    if not observed.any():
        return float("nan")
    error = actual[observed] - quantile[observed]
    return float(np.mean(np.maximum(level * error, (level - 1) * error)))


def rolling_cutoffs(
    history: History, engine: ForecastEngine, h: int, n_windows: int, step_size: int
) -> list[pd.Timestamp]:
    """Return up to ``n_windows`` cutoffs, every ``step_size`` model steps, oldest first.

    The newest cutoff leaves ``h`` complete model steps of actuals after it.
    """
    steps = complete_steps(history, engine.step, engine.settings.aggregation).index
    newest = len(steps) - 1 - h
    positions = [newest - i * step_size for i in range(n_windows)]
    return [steps[p] for p in sorted(positions) if p >= 0]


def evaluate(
    engine: ForecastEngine,
    history: History,
    cutoffs: Sequence[pd.Timestamp],
    h: int,
    refit_every: int = 1,
) -> Evaluation:
    """Forecast ``h`` steps from each cutoff and pair the forecasts with the actuals.

    The engine is fitted at the first cutoff and at every ``refit_every``-th one after it.
    At the other cutoffs the last fit is updated with the history up to that cutoff.
    """
    if refit_every < 1:
        raise ValueError(f"refit_every must be at least 1, got {refit_every}")
    actuals = complete_steps(history, engine.step, engine.settings.aggregation)
    windows = []
    fitted: FittedForecaster | None = None
    for position, cutoff in enumerate(cutoffs):
        visible = history.until(cutoff + engine.step - history.step)
        if fitted is None or position % refit_every == 0:
            fitted = engine.fit(visible)
        else:
            fitted = fitted.update(visible)
        windows.append(score_window(fitted.predict(h), actuals, engine))
    model = windows[0].forecast.model if windows else engine.settings.model
    return Evaluation(model, tuple(windows))


def score_window(
    forecast: Forecast, actuals: pd.Series, engine: ForecastEngine
) -> EvaluationWindow:
    """Pair ``forecast`` with ``actuals`` (complete model steps) and its MASE scale."""
    actual = actuals.reindex(forecast.index.as_unit("ns")).to_numpy(dtype=float)
    return EvaluationWindow(forecast, actual, mase_scale(actuals, forecast.cutoff, engine))


def mase_scale(actuals: pd.Series, cutoff: pd.Timestamp, engine: ForecastEngine) -> float:
    """Return the in-sample MAE of seasonal naive on the model steps up to ``cutoff``.

    The lag is the longest configured season the training steps contain twice, else 1 step;
    NaN when every seasonal difference is zero or missing.
    """
    train = actuals[actuals.index <= cutoff].to_numpy(dtype=float)
    seasons, _ = season_steps(engine.settings.season_lengths_seconds, engine.step, len(train))
    for lag in (max(seasons, default=1), 1):
        if lag < len(train):
            errors = np.abs(train[lag:] - train[:-lag])
            errors = errors[np.isfinite(errors)]
            if len(errors) and errors.mean() > 0:
                return float(errors.mean())
    return float("nan")

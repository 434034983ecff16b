"""Simple exponential smoothing: the non-seasonal fallback for cold starts and odd series.

The engine uses it when the configured model cannot fit (fewer than two seasons of history)
or when the series is constant. The forecast is flat at the smoothed recent level. It is not
in the model registry because it is a fallback, not a configurable choice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pandas as pd
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from forecaster.errors import MissingDataError
from forecaster.impute import impute
from forecaster.models.base import ModelContext
from forecaster.models.smoothing import SmoothingParams, SmoothingState, forecast, run_filter

logger = logging.getLogger(__name__)

# Below this many observed steps the smoothing weight is not estimated.
MIN_OBSERVED_TO_ESTIMATE = 10
# Weight used when it is not estimated: the level follows the latest steps closely.
DEFAULT_ALPHA = 0.5


@dataclass(frozen=True)
class FittedLevel:
    """Smoothing weight, initial level, and the state after the last step."""

    params: SmoothingParams
    initial: SmoothingState
    state: SmoothingState
    notes: tuple[str, ...] = ()

    def update(self, y_new: pd.Series) -> FittedLevel:
        state, _ = run_filter(self.params, self.state, y_new.to_numpy(dtype=float))
        return replace(self, state=state)

    def predict(self, h: int) -> np.ndarray:
        return forecast(self.params, self.state, h)

    def refilter(self, y: pd.Series) -> FittedLevel:
        state, _ = run_filter(self.params, self.initial, y.to_numpy(dtype=float))
        return replace(self, state=state)


class Level:
    """Simple exponential smoothing; see the module docstring."""

    name: ClassVar[str] = "simple_exponential_smoothing"

    def fit(self, y: pd.Series, context: ModelContext) -> FittedLevel:
        values = y.to_numpy(dtype=float)
        observed = values[np.isfinite(values)]
        if len(observed) == 0:
            raise MissingDataError("simple exponential smoothing needs an observed value")

        if len(observed) < MIN_OBSERVED_TO_ESTIMATE or np.ptp(observed) == 0:
            alpha, initial_level = DEFAULT_ALPHA, float(observed[0])
        else:
            alpha, initial_level = _estimate(impute(values))
        params = SmoothingParams(alpha=alpha)
        initial = SmoothingState(level=initial_level, trend=0.0, season=(), n_seen=0)
        state, _ = run_filter(params, initial, values)
        return FittedLevel(params, initial, state)


def _estimate(values: np.ndarray) -> tuple[float, float]:
    result = ExponentialSmoothing(values, initialization_method="estimated").fit(use_brute=False)
    return float(result.params["smoothing_level"]), float(result.params["initial_level"])

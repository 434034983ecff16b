"""The protocol every forecast model implements.

A model works on one series already on the model step grid (a UTC-indexed ``pd.Series`` in
which NaN is a missing sample). Fitting is the expensive, scheduled part; ``update`` feeds new
observations to a fitted model without re-estimating its parameters; ``predict`` is cheap.
Quantiles are not the model's job: the engine calibrates them from rolling-origin residuals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ModelContext:
    """What a model may know besides the values: the step and the seasonal periods in steps."""

    step: pd.Timedelta
    season_lengths: tuple[int, ...]


class FittedModel(Protocol):
    """A model whose parameters are estimated; cheap to update and to predict from."""

    def update(self, y_new: pd.Series) -> FittedModel:
        """Return a model that has also seen ``y_new`` (the grid points after the last seen)."""
        ...

    def predict(self, h: int) -> np.ndarray:
        """Return the point forecast for the next ``h`` steps after the last seen point."""
        ...


class ForecastModel(Protocol):
    """A forecast model kind, registered under ``name`` (the name used in config)."""

    name: ClassVar[str]

    def fit(self, y: pd.Series, context: ModelContext) -> FittedModel:
        """Estimate parameters on ``y``; raise ``InsufficientHistoryError`` when it is too short."""
        ...

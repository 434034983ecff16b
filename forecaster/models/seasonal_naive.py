"""Seasonal naive: the forecast repeats the last observed season.

The season is the longest period in ``ModelContext.season_lengths`` that fits in the history
at least once. A missing step takes the value of the same slot one season earlier, so a gap
never reaches the forecast as NaN. This is also the scale of MASE in ``forecaster.evaluation``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from forecaster.errors import InsufficientHistoryError, MissingDataError
from forecaster.impute import fill_from_seasons, impute
from forecaster.models.base import ModelContext

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FittedSeasonalNaive:
    """The last ``season_length`` values, oldest first, with gaps already filled."""

    season_length: int
    last_season: tuple[float, ...]
    notes: tuple[str, ...] = ()

    def update(self, y_new: pd.Series) -> FittedSeasonalNaive:
        values = np.concatenate([self.last_season, y_new.to_numpy(dtype=float)])
        filled = fill_from_seasons(values, self.season_length)
        return FittedSeasonalNaive(
            self.season_length, tuple(filled[-self.season_length :]), self.notes
        )

    def predict(self, h: int) -> np.ndarray:
        slots = np.arange(h) % self.season_length
        return np.asarray(self.last_season, dtype=float)[slots]

    def refilter(self, y: pd.Series) -> FittedSeasonalNaive:
        return _fit_with_season(y, self.season_length, self.notes)


class SeasonalNaive:
    """Repeat the last season; see the module docstring."""

    name: ClassVar[str] = "seasonal_naive"

    def fit(self, y: pd.Series, context: ModelContext) -> FittedSeasonalNaive:
        fitting = [m for m in context.season_lengths if 0 < m <= len(y)]
        if not fitting:
            raise InsufficientHistoryError(
                f"seasonal naive needs at least one full season; history has {len(y)} steps, "
                f"seasons are {list(context.season_lengths)} steps"
            )
        return _fit_with_season(y, max(fitting), ())


def _fit_with_season(
    y: pd.Series, season_length: int, notes: tuple[str, ...]
) -> FittedSeasonalNaive:
    values = y.to_numpy(dtype=float)
    if len(values) < season_length:
        raise InsufficientHistoryError(
            f"seasonal naive with season {season_length} needs that many steps; "
            f"history has {len(values)}"
        )
    filled = fill_from_seasons(values, season_length)[-season_length:]
    if np.isnan(filled).any():
        # A slot never observed in any season: take it from its neighbours in time.
        filled = impute(filled) if np.isfinite(filled).any() else _recent_level(values, filled)
    return FittedSeasonalNaive(season_length, tuple(filled), notes)


def _recent_level(values: np.ndarray, season: np.ndarray) -> np.ndarray:
    observed = values[np.isfinite(values)]
    if len(observed) == 0:
        raise MissingDataError("seasonal naive needs at least one observed value")
    return np.full(len(season), observed[-1])

"""Seasonal naive repeats the last season and fills gaps from earlier seasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import InsufficientHistoryError
from forecaster.models.base import ModelContext
from forecaster.models.seasonal_naive import SeasonalNaive
from tests.forecaster.synthetic import grid

STEP = pd.Timedelta(hours=1)


def series(values: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=grid(len(values), STEP))


def test_forecast_repeats_last_season() -> None:
    values = np.arange(30, dtype=float)
    fitted = SeasonalNaive().fit(series(values), ModelContext(STEP, (4,)))

    np.testing.assert_array_equal(fitted.predict(10), [26, 27, 28, 29, 26, 27, 28, 29, 26, 27])


def test_uses_longest_season_that_fits() -> None:
    fitted = SeasonalNaive().fit(series(np.arange(10)), ModelContext(STEP, (2, 5, 24)))

    assert fitted.season_length == 5


def test_missing_slot_taken_from_previous_season() -> None:
    values = np.arange(12, dtype=float)
    values[10] = np.nan

    fitted = SeasonalNaive().fit(series(values), ModelContext(STEP, (4,)))

    np.testing.assert_array_equal(fitted.predict(4), [8, 9, 6, 11])


def test_slot_never_observed_is_interpolated() -> None:
    values = np.array([1.0, np.nan, 3.0, 1.0, np.nan, 3.0])

    fitted = SeasonalNaive().fit(series(values), ModelContext(STEP, (3,)))

    np.testing.assert_array_equal(fitted.predict(3), [1, 2, 3])


def test_update_matches_fit_on_longer_series() -> None:
    values = np.sin(np.arange(50.0))
    values[[41, 47]] = np.nan
    context = ModelContext(STEP, (6,))
    full = series(values)

    updated = SeasonalNaive().fit(full.iloc[:40], context).update(full.iloc[40:])
    direct = SeasonalNaive().fit(full, context)

    np.testing.assert_array_equal(updated.predict(12), direct.predict(12))


def test_history_shorter_than_season_raises() -> None:
    with pytest.raises(InsufficientHistoryError, match="at least one full season"):
        SeasonalNaive().fit(series(np.arange(5)), ModelContext(STEP, (24,)))

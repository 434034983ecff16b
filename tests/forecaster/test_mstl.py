"""MSTL: seasonal cycles repeated, the adjusted series smoothed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import InsufficientHistoryError
from forecaster.models.base import ModelContext
from forecaster.models.mstl import Mstl
from tests.forecaster.synthetic import grid

STEP = pd.Timedelta(hours=1)
DAY, WEEK = 24, 168


def two_seasons(n: int, noise: float = 0.0) -> np.ndarray:
    t = np.arange(n)
    shape = 100 + 30 * np.sin(2 * np.pi * t / DAY) + 15 * np.sin(2 * np.pi * t / WEEK)
    return shape + np.random.default_rng(5).normal(0, noise, n)


def test_daily_and_weekly_cycles_forecast() -> None:
    values = two_seasons(5 * WEEK + 48)
    y = pd.Series(values[: 5 * WEEK], index=grid(5 * WEEK, STEP))

    fitted = Mstl().fit(y, ModelContext(STEP, (DAY, WEEK)))

    assert fitted.periods == (DAY, WEEK)
    np.testing.assert_allclose(fitted.predict(48), values[5 * WEEK :], atol=3.0)


def test_update_keeps_seasonal_phase() -> None:
    values = two_seasons(5 * WEEK + 60)
    y = pd.Series(values, index=grid(len(values), STEP))
    fitted = Mstl().fit(y.iloc[: 5 * WEEK], ModelContext(STEP, (DAY, WEEK)))

    updated = fitted.update(y.iloc[5 * WEEK : 5 * WEEK + 12])

    np.testing.assert_allclose(updated.predict(48), values[5 * WEEK + 12 :], atol=3.0)


def test_period_without_two_cycles_dropped_with_note() -> None:
    y = pd.Series(two_seasons(10 * DAY, noise=1.0), index=grid(10 * DAY, STEP))

    fitted = Mstl().fit(y, ModelContext(STEP, (DAY, WEEK)))

    assert fitted.periods == (DAY,)
    assert fitted.notes
    assert "168 steps" in fitted.notes[0]


def test_gaps_do_not_reach_the_forecast() -> None:
    values = two_seasons(4 * WEEK, noise=2.0)
    values[200:230] = np.nan
    values[-3:] = np.nan
    y = pd.Series(values, index=grid(len(values), STEP))

    fitted = Mstl().fit(y, ModelContext(STEP, (DAY, WEEK)))

    assert np.isfinite(fitted.predict(48)).all()


def test_no_usable_period_raises() -> None:
    y = pd.Series(two_seasons(40), index=grid(40, STEP))

    with pytest.raises(InsufficientHistoryError, match="more than two cycles"):
        Mstl().fit(y, ModelContext(STEP, (DAY, WEEK)))

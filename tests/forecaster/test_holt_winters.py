"""Holt-Winters: statsmodels' estimates continued by the shared smoothing filter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from forecaster.errors import InsufficientHistoryError
from forecaster.models.base import ModelContext
from forecaster.models.holt_winters import HoltWinters, _smoothing_from
from forecaster.models.smoothing import forecast, run_filter
from tests.forecaster.synthetic import grid

STEP = pd.Timedelta(minutes=30)
SEASON = 48


def noisy_daily(n: int, seed: int = 1) -> np.ndarray:
    t = np.arange(n)
    return 100 + 30 * np.sin(2 * np.pi * t / SEASON) + np.random.default_rng(seed).normal(0, 4, n)


def test_filter_reproduces_statsmodels_one_step_predictions() -> None:
    y = noisy_daily(480)
    result = ExponentialSmoothing(
        y,
        trend="add",
        damped_trend=True,
        seasonal="add",
        seasonal_periods=SEASON,
        initialization_method="heuristic",
    ).fit(use_brute=False)
    params, initial = _smoothing_from(result.params, True, SEASON)

    state, predictions = run_filter(params, initial, y)

    np.testing.assert_allclose(predictions, result.fittedvalues, rtol=0, atol=1e-9)
    # statsmodels leaves the last observation out of the seasonal term it uses SEASON steps
    # ahead, so only the steps before that are compared.
    np.testing.assert_allclose(
        forecast(params, state, SEASON - 1), result.forecast(SEASON - 1), rtol=0, atol=1e-9
    )


def test_noiseless_daily_sinusoid_predicted_closely() -> None:
    t = np.arange(10 * SEASON)
    y = pd.Series(200 + 50 * np.sin(2 * np.pi * t / SEASON), index=grid(len(t), STEP))

    fitted = HoltWinters().fit(y, ModelContext(STEP, (SEASON,)))

    t_next = np.arange(len(t), len(t) + SEASON)
    expected = 200 + 50 * np.sin(2 * np.pi * t_next / SEASON)
    np.testing.assert_allclose(fitted.predict(SEASON), expected, atol=1.0)


def test_update_equals_refilter_on_full_series() -> None:
    values = noisy_daily(400)
    values[[350, 351, 390]] = np.nan
    y = pd.Series(values, index=grid(len(values), STEP))
    fitted = HoltWinters().fit(y.iloc[:300], ModelContext(STEP, (SEASON,)))

    updated = fitted.update(y.iloc[300:350]).update(y.iloc[350:])
    refiltered = fitted.refilter(y)

    np.testing.assert_allclose(updated.predict(96), refiltered.predict(96), rtol=0, atol=1e-9)


def test_gaps_do_not_reach_the_forecast() -> None:
    values = noisy_daily(480)
    values[100:130] = np.nan
    values[-5:] = np.nan
    y = pd.Series(values, index=grid(len(values), STEP))

    fitted = HoltWinters().fit(y, ModelContext(STEP, (SEASON,)))

    prediction = fitted.predict(SEASON)
    assert np.isfinite(prediction).all()
    assert prediction.max() < 150
    assert prediction.min() > 50


def test_uses_shortest_season() -> None:
    y = pd.Series(noisy_daily(800), index=grid(800, STEP))

    fitted = HoltWinters().fit(y, ModelContext(STEP, (SEASON, 7 * SEASON)))

    assert fitted.params.season_length == SEASON


def test_without_trend_has_no_trend_term() -> None:
    y = pd.Series(noisy_daily(300), index=grid(300, STEP))

    fitted = HoltWinters(trend="none").fit(y, ModelContext(STEP, (SEASON,)))

    assert not fitted.params.has_trend
    assert fitted.state.trend == 0.0


def test_fewer_than_two_seasons_raises() -> None:
    y = pd.Series(noisy_daily(90), index=grid(90, STEP))

    with pytest.raises(InsufficientHistoryError, match="two full seasons"):
        HoltWinters().fit(y, ModelContext(STEP, (SEASON,)))


def test_no_season_configured_raises() -> None:
    y = pd.Series(noisy_daily(90), index=grid(90, STEP))

    with pytest.raises(InsufficientHistoryError, match="seasonal period"):
        HoltWinters().fit(y, ModelContext(STEP, ()))

"""Holt-Winters: statsmodels' estimates continued by the shared smoothing filter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from forecaster.errors import ConfigError, InsufficientHistoryError
from forecaster.models.base import ModelContext
from forecaster.models.holt_winters import HoltWinters, _smoothing_from
from forecaster.models.multistep import MAX_ORIGINS, candidate_grid, multistep_errors
from forecaster.models.smoothing import SmoothingParams, SmoothingState, forecast, run_filter
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


def test_daily_season_kept_without_weekly_pattern() -> None:
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


def test_multistep_errors_match_naive_loop() -> None:
    values = noisy_daily(300)
    values[[120, 121, 250]] = np.nan
    initial = SmoothingState(level=100.0, trend=0.5, season=tuple(np.zeros(SEASON)), n_seen=0)
    grid = candidate_grid(has_trend=True)[[0, 57, 123]]
    h, first_origin = 10, 100

    fast = multistep_errors(values, initial, grid, True, SEASON, h, first_origin)

    origins = np.unique(np.linspace(first_origin, len(values) - 2, MAX_ORIGINS).astype(int))
    for row, (alpha, beta, gamma, phi) in enumerate(grid):
        params = SmoothingParams(alpha, beta, gamma, phi, has_trend=True, season_length=SEASON)
        errors = []
        for origin in origins:
            state, _ = run_filter(params, initial, values[: origin + 1])
            actual = values[origin + 1 : origin + 1 + h]
            predicted = forecast(params, state, len(actual))
            errors.extend((predicted - actual)[np.isfinite(actual)] ** 2)
        assert fast[row] == pytest.approx(np.mean(errors), rel=1e-9)


def test_multistep_beats_likelihood_on_persistent_noise() -> None:
    """Deviations that last hours push likelihood to copy the level; day-ahead error shows it."""
    n = 30 * SEASON
    t = np.arange(n + SEASON)
    drift = np.zeros(len(t))
    shocks = np.random.default_rng(8).normal(0, 6, len(t))
    for i in range(1, len(t)):
        drift[i] = 0.95 * drift[i - 1] + shocks[i]
    values = 200 + 60 * np.sin(2 * np.pi * t / SEASON) + drift
    y = pd.Series(values[:n], index=grid(n, STEP))
    context = ModelContext(STEP, (SEASON,))

    errors = {}
    for estimation in ("multistep", "likelihood"):
        fitted = HoltWinters(estimation=estimation).fit(y, context)  # type: ignore[arg-type]
        errors[estimation] = np.abs(fitted.predict(SEASON) - values[n:]).mean()

    assert errors["multistep"] < errors["likelihood"]


def test_weekly_season_chosen_for_weekday_pattern() -> None:
    week = 7 * SEASON
    t = np.arange(4 * week)
    weekend = ((t // SEASON) % 7 >= 5).astype(float)
    values = 100 + 40 * np.sin(2 * np.pi * t / SEASON) * (1 - 0.8 * weekend)
    values = values + np.random.default_rng(2).normal(0, 2, len(t))
    y = pd.Series(values, index=grid(len(t), STEP))

    best = HoltWinters().fit(y, ModelContext(STEP, (SEASON, week)))
    shortest = HoltWinters(season_choice="shortest").fit(y, ModelContext(STEP, (SEASON, week)))

    assert best.params.season_length == week
    assert shortest.params.season_length == SEASON


def test_estimated_initialisation_needs_likelihood() -> None:
    with pytest.raises(ConfigError, match="initialization"):
        HoltWinters(initialization="estimated")

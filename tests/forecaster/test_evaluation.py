"""Rolling-origin evaluation: metrics against known values, and no leakage past the cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.engine import ForecastEngine
from forecaster.evaluation import (
    Evaluation,
    EvaluationWindow,
    evaluate,
    pinball_loss,
    rolling_cutoffs,
)
from forecaster.forecast import Forecast
from forecaster.settings import ForecastSettings
from tests.forecaster.synthetic import START, daily_sine, history

HALF_HOUR = pd.Timedelta(minutes=30)
DAILY = ForecastSettings(season_lengths_seconds=[86_400])
SERIES = daily_sine(days=12, step=HALF_HOUR, noise=5.0, seed=3)


def window(
    actual: list[float], point: list[float], q90: list[float], scale: float
) -> EvaluationWindow:
    forecast = Forecast(
        name="w",
        cutoff=START,
        step=HALF_HOUR,
        point=np.array(point),
        quantiles={0.9: np.array(q90)},
        model="test",
    )
    return EvaluationWindow(forecast, np.array(actual), scale)


def test_pinball_loss_known_values() -> None:
    assert pinball_loss(np.array([10.0]), np.array([8.0]), 0.9) == pytest.approx(1.8)
    assert pinball_loss(np.array([6.0]), np.array([8.0]), 0.9) == pytest.approx(0.2)
    assert np.isnan(pinball_loss(np.array([np.nan]), np.array([8.0]), 0.9))


def test_metrics_over_windows() -> None:
    evaluation = Evaluation(
        "test",
        (
            window([10, 20], [12, 20], [15, 25], scale=2.0),
            window([10, np.nan], [10, 0], [9, 0], scale=1.0),
        ),
    )

    assert evaluation.mase() == pytest.approx((1.0 / 2.0 + 0.0) / 2)
    assert evaluation.coverage(0.9) == pytest.approx(2 / 3)
    unscaled = (0.1 * 5 + 0.1 * 5) / 2
    assert evaluation.pinball(0.9, scaled=False) == pytest.approx((unscaled + 0.9) / 2)
    assert evaluation.pinball(0.9) == pytest.approx((unscaled / 2 + 0.9) / 2)


def test_seasonal_naive_on_periodic_series_has_zero_mase() -> None:
    series = daily_sine(days=10, step=HALF_HOUR)
    engine = ForecastEngine(DAILY.model_copy(update={"model": "seasonal_naive"}))
    cutoffs = rolling_cutoffs(series, engine, h=48, n_windows=3, step_size=24)

    evaluation = evaluate(engine, series, cutoffs, h=48)

    assert evaluation.mase() == pytest.approx(0.0, abs=1e-9)
    assert evaluation.windows[0].scale > 0


def test_rolling_cutoffs_leave_full_horizon() -> None:
    engine = ForecastEngine(DAILY)

    cutoffs = rolling_cutoffs(SERIES, engine, h=48, n_windows=3, step_size=24)

    last_step = SERIES.end.floor("30min")
    assert cutoffs[-1] == last_step - 48 * HALF_HOUR
    assert cutoffs[0] == cutoffs[-1] - 2 * 24 * HALF_HOUR


def test_refit_every_updates_between_fits() -> None:
    engine = ForecastEngine(DAILY)
    cutoffs = rolling_cutoffs(SERIES, engine, h=48, n_windows=3, step_size=12)

    once = evaluate(engine, SERIES, cutoffs, h=48, refit_every=3)
    fitted = engine.fit(SERIES.until(cutoffs[0] + HALF_HOUR - SERIES.step))
    manual = fitted.update(SERIES.until(cutoffs[2] + HALF_HOUR - SERIES.step)).predict(48)

    assert [w.cutoff for w in once.windows] == cutoffs
    np.testing.assert_array_equal(once.windows[2].forecast.point, manual.point)


@settings(max_examples=20, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=3),
    factor=st.floats(min_value=0.0, max_value=1e3),
    nan_every=st.integers(min_value=1, max_value=50),
)
def test_values_after_cutoff_never_change_forecast(
    position: int, factor: float, nan_every: int
) -> None:
    engine = ForecastEngine(DAILY)
    cutoff = rolling_cutoffs(SERIES, engine, h=48, n_windows=4, step_size=24)[position]
    changed = SERIES.values.to_numpy().copy()
    after = np.flatnonzero(SERIES.values.index > cutoff + HALF_HOUR - SERIES.step)
    changed[after] *= factor
    changed[after[::nan_every]] = np.nan

    original = evaluate(engine, SERIES, [cutoff], h=48).windows[0].forecast
    perturbed = evaluate(engine, history(changed, SERIES.step), [cutoff], h=48)

    forecast = perturbed.windows[0].forecast
    np.testing.assert_array_equal(forecast.point, original.point)
    for level in original.quantiles:
        np.testing.assert_array_equal(forecast.quantiles[level], original.quantiles[level])


def test_refit_every_rejects_zero() -> None:
    with pytest.raises(ValueError, match="refit_every"):
        evaluate(ForecastEngine(DAILY), SERIES, [], h=48, refit_every=0)

"""Conformal quantiles by horizon step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.calibration import (
    Calibration,
    calibration_cutoffs,
    conformal_offsets,
    naive_change_residuals,
    residual_matrix,
)
from forecaster.engine import ForecastEngine
from forecaster.settings import ForecastSettings
from tests.forecaster.synthetic import daily_sine


@pytest.mark.parametrize(
    ("n", "h", "windows", "step_size", "min_train", "expected"),
    [
        pytest.param(100, 10, 3, 5, 20, [79, 84, 89], id="full-windows"),
        pytest.param(40, 10, 5, 10, 20, [21, 23, 25, 27, 29], id="spacing-shrinks"),
        pytest.param(25, 10, 3, 5, 20, [19, 21, 23], id="partial-windows"),
        pytest.param(20, 10, 3, 5, 20, [], id="no-room"),
        pytest.param(100, 10, 1, 5, 20, [89], id="one-window"),
    ],
)
def test_calibration_cutoffs(
    n: int, h: int, windows: int, step_size: int, min_train: int, expected: list[int]
) -> None:
    assert calibration_cutoffs(n, h, windows, step_size, min_train) == expected


def test_residual_matrix_marks_missing_actuals() -> None:
    y = np.array([0.0, 1, 2, 3, np.nan, 5])
    forecasts = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])

    residuals = residual_matrix(y, forecasts, [1, 3])

    np.testing.assert_array_equal(residuals[0], [1.0, 2.0, np.nan])
    np.testing.assert_array_equal(residuals[1], [np.nan, 3.0, np.nan])


def test_offsets_are_conformal_order_statistics() -> None:
    residuals = np.arange(100.0).reshape(100, 1)

    offsets = conformal_offsets(residuals, [0.1, 0.9])

    assert offsets[0, 0] == 9.0  # rank floor(101 * 0.1) = 10
    assert offsets[1, 0] == 90.0  # rank ceil(101 * 0.9) = 91


def test_few_windows_pool_neighbouring_steps() -> None:
    residuals = np.tile(np.arange(10.0), (5, 1))  # step k always misses by k

    offsets = conformal_offsets(residuals, [0.5], min_pooled=40)

    # 5 windows need a radius of 4 steps: step 0 pools steps 0-4, step 5 pools steps 1-9.
    assert offsets[0, 0] == 2.0
    assert offsets[0, 5] == 5.0


def test_offsets_monotone_in_level() -> None:
    residuals = np.random.default_rng(3).standard_t(3, size=(14, 48))

    offsets = conformal_offsets(residuals, [0.05, 0.5, 0.9, 0.95, 0.99])

    assert (np.diff(offsets, axis=0) >= 0).all()


def test_step_without_residual_takes_nearest_step() -> None:
    residuals = np.full((100, 3), np.nan)
    residuals[:, 0] = np.arange(100.0)

    offsets = conformal_offsets(residuals, [0.9], min_pooled=1)

    np.testing.assert_array_equal(offsets[0], [90.0, 90.0, 90.0])


def test_no_finite_residual_raises() -> None:
    with pytest.raises(ValueError, match="no finite residual"):
        conformal_offsets(np.full((3, 2), np.nan), [0.9])


def test_quantiles_beyond_calibrated_h_reuse_last_offset() -> None:
    calibration = Calibration((0.9,), np.array([[1.0, 2.0]]), windows=3, source="test")

    quantiles = calibration.quantiles(np.zeros(4))

    np.testing.assert_array_equal(quantiles[0.9], [1.0, 2.0, 2.0, 2.0])


def test_naive_change_residuals() -> None:
    changes = naive_change_residuals(np.array([1.0, 3.0, 6.0]), 2)

    np.testing.assert_array_equal(changes[0], [2.0, 5.0])
    np.testing.assert_array_equal(changes[1], [3.0, np.nan])


def test_p90_covers_about_90_percent_of_noise() -> None:
    settings = ForecastSettings(season_lengths_seconds=[86_400], history_seconds=21 * 86_400)
    engine = ForecastEngine(settings)
    series = daily_sine(days=40, step=pd.Timedelta(minutes=30), noise=10.0, seed=7)
    actuals = series.values
    hits: list[np.ndarray] = []

    for day in range(22, 40):
        cutoff = series.start + pd.Timedelta(days=day) - series.step
        forecast = engine.fit(series.until(cutoff)).predict()
        truth = actuals.loc[forecast.index].to_numpy()
        hits.append(truth <= forecast.quantiles[0.9])

    coverage = float(np.concatenate(hits).mean())
    assert 0.86 <= coverage <= 0.94

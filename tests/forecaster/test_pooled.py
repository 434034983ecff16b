"""A pool's forecast is the forecast of its summed demand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.engine import ForecastEngine
from forecaster.pooled import forecast_pool, pooled_history
from forecaster.settings import ForecastSettings
from tests.forecaster.synthetic import START, daily_sine, history

HALF_HOUR = pd.Timedelta(minutes=30)
FIVE_MIN = pd.Timedelta(minutes=5)
DAILY = ForecastSettings(season_lengths_seconds=[86_400], aggregation="mean")


def test_histories_summed_on_common_grid() -> None:
    first = history(np.array([1.0, 2.0, 3.0]), HALF_HOUR)
    second = history(np.array([10.0, np.nan, 30.0, 40.0]), HALF_HOUR, START + HALF_HOUR)

    pooled = pooled_history([first, second], "pool")

    assert pooled.name == "pool"
    assert pooled.start == START
    np.testing.assert_array_equal(pooled.values.to_numpy(), [np.nan, 12.0, np.nan, np.nan, np.nan])


def test_finer_history_averaged_to_coarsest_step() -> None:
    fine = history(np.arange(12.0), FIVE_MIN)
    coarse = history(np.array([100.0, 200.0]), HALF_HOUR)

    pooled = pooled_history([fine, coarse], "pool")

    assert pooled.step == HALF_HOUR
    np.testing.assert_array_equal(pooled.values.to_numpy(), [102.5, 208.5])


def test_no_histories_raises() -> None:
    with pytest.raises(ValueError, match="no histories"):
        pooled_history([], "pool")


def test_pooled_p90_below_sum_of_p90() -> None:
    members = [
        daily_sine(days=14, step=HALF_HOUR, base=100.0, amplitude=30.0, noise=15.0, seed=seed)
        for seed in range(4)
    ]
    engine = ForecastEngine(DAILY)

    pooled = forecast_pool(engine, members, "pool")
    separate = [engine.fit(member).predict() for member in members]

    summed_p90 = np.sum([forecast.quantiles[0.9] for forecast in separate], axis=0)
    summed_point = np.sum([forecast.point for forecast in separate], axis=0)
    assert (pooled.quantiles[0.9] < summed_p90).mean() >= 0.9
    assert pooled.quantiles[0.9].mean() < summed_p90.mean() - 20.0
    np.testing.assert_allclose(pooled.point, summed_point, rtol=0.1)

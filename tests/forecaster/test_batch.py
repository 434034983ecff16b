"""Fitting many series in a process pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.batch import fit_many
from forecaster.engine import ForecastEngine
from forecaster.errors import MissingDataError
from forecaster.history import History
from forecaster.settings import ForecastSettings
from tests.forecaster.synthetic import daily_sine, history

HALF_HOUR = pd.Timedelta(minutes=30)
DAILY = ForecastSettings(season_lengths_seconds=[86_400])


def named(series: History, name: str) -> History:
    return History(name, series.values, series.step)


def test_pool_results_match_sequential_fits() -> None:
    histories = [
        named(daily_sine(days=8, step=HALF_HOUR, noise=4.0, seed=seed), f"w{seed}")
        for seed in range(3)
    ]

    results = fit_many(DAILY, histories, max_workers=2)

    assert list(results) == ["w0", "w1", "w2"]
    for series in histories:
        expected = ForecastEngine(DAILY).fit(series).predict()
        result = results[series.name]
        assert not isinstance(result, Exception)
        np.testing.assert_array_equal(result.predict().point, expected.point)


def test_unusable_history_returned_as_error() -> None:
    good = named(daily_sine(days=8, step=HALF_HOUR, noise=4.0), "good")
    empty = named(history(np.full(100, np.nan), HALF_HOUR), "empty")

    results = fit_many(DAILY, [good, empty], max_workers=2)

    assert isinstance(results["empty"], MissingDataError)
    assert not isinstance(results["good"], Exception)


def test_duplicate_names_rejected() -> None:
    series = daily_sine(days=3, step=HALF_HOUR)

    with pytest.raises(ValueError, match="unique"):
        fit_many(DAILY, [series, series])

"""Peak windows of a quantile series above a threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.forecast import Forecast
from forecaster.peaks import PeakWindow, forecast_peak_windows, peak_windows
from tests.forecaster.synthetic import START, grid

STEP = pd.Timedelta(minutes=30)


def series(values: list[float]) -> pd.Series:
    return pd.Series(values, index=grid(len(values), STEP))


def at(steps: int) -> pd.Timestamp:
    return START + steps * STEP


def test_two_windows_with_peaks() -> None:
    windows = peak_windows(series([1, 5, 7, 5, 1, 1, 6, 1]), threshold=4, step=STEP)

    assert windows == [
        PeakWindow(start=at(1), end=at(4), peak=7.0, peak_time=at(2)),
        PeakWindow(start=at(6), end=at(7), peak=6.0, peak_time=at(6)),
    ]


def test_value_equal_to_threshold_is_not_above() -> None:
    assert peak_windows(series([4, 4, 4]), threshold=4, step=STEP) == []


def test_window_at_end_closes_after_last_step() -> None:
    windows = peak_windows(series([1, 9, 9]), threshold=4, step=STEP)

    assert windows[0].end == at(3)
    assert windows[0].duration == 2 * STEP


def test_nan_step_breaks_a_window() -> None:
    windows = peak_windows(series([5, np.nan, 5]), threshold=4, step=STEP)

    assert len(windows) == 2


def test_short_dip_merged() -> None:
    values = series([5, 1, 6, 1, 1, 1, 5])

    windows = peak_windows(values, threshold=4, step=STEP, merge_gap=STEP)

    assert [(w.start, w.end, w.peak) for w in windows] == [(at(0), at(3), 6.0), (at(6), at(7), 5.0)]


def test_first_time_of_equal_peaks_reported() -> None:
    windows = peak_windows(series([5, 8, 8, 5]), threshold=4, step=STEP)

    assert windows[0].peak_time == at(1)


def test_forecast_quantile_windows() -> None:
    forecast = Forecast(
        name="w",
        cutoff=START - STEP,
        step=STEP,
        point=np.array([1.0, 2.0, 3.0]),
        quantiles={0.9: np.array([2.0, 6.0, 3.0])},
        model="test",
    )

    windows = forecast_peak_windows(forecast, level=0.9, threshold=5)

    assert windows == [PeakWindow(start=at(1), end=at(2), peak=6.0, peak_time=at(1))]

"""Peak windows: contiguous intervals in which a forecast quantile exceeds a threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.forecast import Forecast

NO_GAP = pd.Timedelta(0)


@dataclass(frozen=True)
class PeakWindow:
    """An interval ``[start, end)`` of model steps whose value exceeds the threshold.

    ``end`` is the end of the last step above the threshold, so the window covers it fully.
    ``peak`` is the highest value inside, first reached at ``peak_time``.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    peak: float
    peak_time: pd.Timestamp

    @property
    def duration(self) -> pd.Timedelta:
        return self.end - self.start


def peak_windows(
    series: pd.Series,
    threshold: float,
    step: pd.Timedelta,
    merge_gap: pd.Timedelta = NO_GAP,
) -> list[PeakWindow]:
    """Return the windows in which ``series`` (indexed by step start) exceeds ``threshold``.

    Steps equal to the threshold or NaN are not above it. Windows separated by at most
    ``merge_gap`` are merged, so capacity is not released for a short dip.
    """
    above = np.nan_to_num(series.to_numpy(dtype=float), nan=-np.inf) > threshold
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # one past the last step above
    runs = _merge_runs(list(zip(starts, stops, strict=True)), merge_gap // step)

    values = series.to_numpy(dtype=float)
    index = series.index
    windows = []
    for first, stop in runs:
        inside = values[first:stop]
        top = first + int(np.nanargmax(inside))
        windows.append(
            PeakWindow(
                start=index[first],
                end=index[stop - 1] + step,
                peak=float(values[top]),
                peak_time=index[top],
            )
        )
    return windows


def forecast_peak_windows(
    forecast: Forecast, level: float, threshold: float, merge_gap: pd.Timedelta = NO_GAP
) -> list[PeakWindow]:
    """Return the peak windows of the forecast quantile at ``level`` above ``threshold``."""
    return peak_windows(forecast.quantile(level), threshold, forecast.step, merge_gap)


def _merge_runs(runs: list[tuple[int, int]], max_gap_steps: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, stop in runs:
        if merged and first - merged[-1][1] <= max_gap_steps:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((first, stop))
    return merged

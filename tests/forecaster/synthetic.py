"""Synthetic histories with known shapes for the forecasting tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.history import History

START = pd.Timestamp("2024-03-04T00:00:00Z")
DAY = pd.Timedelta(days=1)


def grid(periods: int, step: pd.Timedelta, start: pd.Timestamp = START) -> pd.DatetimeIndex:
    """Return an epoch-aligned UTC grid with nanosecond resolution, as History expects."""
    return pd.date_range(start, periods=periods, freq=step, tz="UTC").as_unit("ns")


def history(values: np.ndarray, step: pd.Timedelta, start: pd.Timestamp = START) -> History:
    """Wrap ``values`` into a History named ``w`` starting at ``start``."""
    return History(
        "w", pd.Series(np.asarray(values, dtype=float), index=grid(len(values), step, start)), step
    )


def daily_sine(
    days: float,
    step: pd.Timedelta,
    base: float = 100.0,
    amplitude: float = 40.0,
    noise: float = 0.0,
    peak_hour: float = 14.0,
    seed: int = 0,
) -> History:
    """A daily sinusoid peaking at ``peak_hour`` UTC, plus Gaussian noise of sd ``noise``."""
    periods = round(days * DAY / step)
    index = grid(periods, step)
    hours = (index - index.normalize()) / pd.Timedelta(hours=1)
    shape = base + amplitude * np.cos(2 * np.pi * (np.asarray(hours) - peak_hour) / 24)
    noise_values = np.random.default_rng(seed).normal(0.0, noise, periods) if noise else 0.0
    return History("w", pd.Series(shape + noise_values, index=index), step)

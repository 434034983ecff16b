"""Smoothing weights chosen by multi-step forecast error instead of one-step error.

Maximum likelihood (statsmodels' default) minimises one-step-ahead errors. On half-hourly
demand, deviations from the seasonal shape persist for hours, so that criterion drives the
level weight towards 1 and the season weight towards 0: the forecast then copies the level at
the cutoff into the whole next day. Scoring each candidate by the mean squared error of its
forecasts 1 to ``h`` steps ahead from many origins (the "AMSE" criterion of Hyndman et al.,
Forecasting with Exponential Smoothing, 2008) picks weights that forecast a day ahead well.

All candidates are filtered at once: the state has one entry per candidate, so the loop over
time runs once for the whole grid.
"""

from __future__ import annotations

import itertools

import numpy as np

from forecaster.models.smoothing import SmoothingParams, SmoothingState

LEVEL_WEIGHTS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)
SEASON_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.4)
# (trend weight, damping) pairs. A zero trend weight with damping below 1 lets the initial
# trend fade out, which is how "no trend" is expressed inside a damped-trend model.
TREND_CHOICES = ((0.0, 0.8), (0.02, 0.9), (0.05, 0.98), (0.1, 0.8), (0.2, 0.9))
# Forecast origins scored per candidate; more cost time and change the choice little.
MAX_ORIGINS = 150


def candidate_grid(has_trend: bool, extra: SmoothingParams | None = None) -> np.ndarray:
    """Return candidate rows ``(alpha, beta, gamma, phi)``, with ``extra`` as the last row."""
    trends = TREND_CHOICES if has_trend else ((0.0, 1.0),)
    rows = [
        (alpha, beta, gamma, phi)
        for alpha, gamma, (beta, phi) in itertools.product(LEVEL_WEIGHTS, SEASON_WEIGHTS, trends)
    ]
    if extra is not None:
        rows.append((extra.alpha, extra.beta, extra.gamma, extra.phi))
    return np.asarray(rows, dtype=float)


def multistep_errors(
    y: np.ndarray,
    initial: SmoothingState,
    grid: np.ndarray,
    has_trend: bool,
    season_length: int,
    h: int,
    first_origin: int,
) -> np.ndarray:
    """Return each candidate's mean squared error of forecasts 1 to ``h`` steps ahead.

    Origins are spread evenly from ``first_origin`` to the last step that still has an
    actual after it; NaN actuals are skipped and NaN inputs are replaced by the prediction,
    as in ``forecaster.models.smoothing.run_filter``. Returns +inf for every candidate when
    no origin has an observed actual.
    """
    values = np.asarray(y, dtype=float)
    n, m = len(values), season_length
    alpha, beta, gamma, phi = (grid[:, column] for column in range(4))
    if not has_trend:
        phi = np.zeros(len(grid))
    steps = np.arange(1, h + 1)
    trend_sums = _trend_sums(phi, steps) if has_trend else np.zeros((h, len(grid)))
    origins = set(np.unique(np.linspace(first_origin, n - 2, MAX_ORIGINS).astype(int)).tolist())

    level = np.full(len(grid), initial.level)
    trend = np.full(len(grid), initial.trend)
    # One row per slot, so that reading and writing a slot touches contiguous memory.
    season = np.repeat(np.asarray(initial.season, dtype=float)[:, None], len(grid), axis=1)
    keep_level, keep_trend, keep_season = 1 - alpha, (1 - beta) * phi, 1 - gamma
    squared = np.zeros(len(grid))
    counted = 0
    for t in range(n):
        slot = t % m
        seasonal = season[slot]
        damped = level + phi * trend
        observed = values[t]
        value = damped + seasonal if np.isnan(observed) else observed
        new_level = alpha * (value - seasonal) + keep_level * damped
        trend = beta * (new_level - level) + keep_trend * trend
        season[slot] = gamma * (value - damped) + keep_season * seasonal
        level = new_level
        if t in origins:
            actual = values[t + 1 : t + 1 + h]
            ahead = np.flatnonzero(np.isfinite(actual))
            if len(ahead):
                slots = (t + 1 + ahead) % m
                predicted = level + trend_sums[ahead] * trend + season[slots]
                error = predicted - actual[ahead][:, None]
                squared += (error * error).sum(axis=0)
                counted += len(ahead)
    if counted == 0:
        return np.full(len(grid), np.inf)
    return squared / counted


def _trend_sums(phi: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Return ``phi + phi**2 + ... + phi**k``, one row per step ``k``, one column per candidate."""
    powers = phi[None, :] ** steps[:, None]
    return np.cumsum(powers, axis=0)

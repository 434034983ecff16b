"""The additive exponential smoothing recursion shared by Holt-Winters and the level model.

Parameters are estimated elsewhere (statsmodels for Holt-Winters); this module only runs the
filter with fixed parameters, so ``update`` feeds new points without re-estimation. The
equations are the additive damped-trend, additive-season form that statsmodels' Holt-Winters
uses (``statsmodels.tsa.holtwinters``, 0.14), so a state filtered here continues a statsmodels
fit exactly. A missing observation (NaN) is replaced by its one-step prediction: the state then
moves on without a correction, as a state-space filter does with a missing sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmoothingParams:
    """Smoothing weights in [0, 1]; ``phi`` damps the trend (1 = undamped).

    ``season_length`` is in model steps, 0 for no seasonal component. Without a trend,
    ``beta`` and ``phi`` are ignored.
    """

    alpha: float
    beta: float = 0.0
    gamma: float = 0.0
    phi: float = 1.0
    has_trend: bool = False
    season_length: int = 0


@dataclass(frozen=True)
class SmoothingState:
    """Filter state after ``n_seen`` observations.

    ``season[j]`` is the seasonal term of every time index ``t`` with ``t % m == j``, where
    ``t`` counts steps from the first observation the filter saw.
    """

    level: float
    trend: float
    season: tuple[float, ...]
    n_seen: int


def run_filter(
    params: SmoothingParams, state: SmoothingState, y: np.ndarray
) -> tuple[SmoothingState, np.ndarray]:
    """Feed ``y`` through the filter; return the new state and the one-step predictions."""
    alpha, beta, gamma = params.alpha, params.beta, params.gamma
    phi = params.phi if params.has_trend else 0.0
    m = params.season_length
    level, trend, t = state.level, state.trend, state.n_seen
    season = list(state.season)
    predictions = np.empty(len(y))

    for i, observed in enumerate(y.tolist()):
        slot = t % m if m else 0
        seasonal = season[slot] if m else 0.0
        damped = level + phi * trend
        prediction = damped + seasonal
        predictions[i] = prediction
        value = prediction if observed != observed else observed  # NaN check without a call
        new_level = alpha * (value - seasonal) + (1 - alpha) * damped
        if params.has_trend:
            trend = beta * (new_level - level) + (1 - beta) * phi * trend
        if m:
            season[slot] = gamma * (value - damped) + (1 - gamma) * seasonal
        level = new_level
        t += 1

    return SmoothingState(level, trend, tuple(season), t), predictions


def forecast(params: SmoothingParams, state: SmoothingState, h: int) -> np.ndarray:
    """Return the point forecast for the ``h`` steps after the state's last observation."""
    k = np.arange(1, h + 1)
    if params.has_trend:
        phi = params.phi
        trend_sum = k.astype(float) if phi == 1 else phi * (1 - phi**k) / (1 - phi)
        path = state.level + trend_sum * state.trend
    else:
        path = np.full(h, state.level)
    if params.season_length:
        slots = (state.n_seen + k - 1) % params.season_length
        path = path + np.asarray(state.season)[slots]
    return np.asarray(path, dtype=float)

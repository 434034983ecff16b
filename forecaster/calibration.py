"""Conformal quantiles by horizon step, from rolling-origin residuals.

For each horizon step ``k`` the residuals ``actual - point`` of past forecasts made ``k`` steps
ahead form an empirical distribution. The quantile at ``level`` is the point forecast plus the
split-conformal order statistic of those residuals: rank ``ceil((n + 1) * level)`` for upper
levels, ``floor((n + 1) * level)`` for lower ones. With few forecast windows a single step has
too few residuals, so neighbouring horizon steps are pooled until at least
``MIN_POOLED_RESIDUALS`` residuals are available. Offsets at every step come from one sorted
sample, so the quantiles are monotone in level.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.errors import InsufficientHistoryError
from forecaster.models.base import FittedModel, ForecastModel, ModelContext
from forecaster.models.refilter import Refilterable

# Residuals pooled per horizon step before a quantile is read: enough for a stable P95.
MIN_POOLED_RESIDUALS = 40


@dataclass(frozen=True)
class Calibration:
    """Offsets added to the point forecast, one row per level and one column per step."""

    levels: tuple[float, ...]
    offsets: np.ndarray
    windows: int
    source: str

    @property
    def h(self) -> int:
        return int(self.offsets.shape[1])

    def quantiles(self, point: np.ndarray) -> dict[float, np.ndarray]:
        """Return ``point + offset`` per level; steps beyond the calibrated ``h`` reuse its last."""
        columns = np.minimum(np.arange(len(point)), self.h - 1)
        return {level: point + self.offsets[row, columns] for row, level in enumerate(self.levels)}


def calibration_cutoffs(n: int, h: int, windows: int, step_size: int, min_train: int) -> list[int]:
    """Return ascending cutoff positions (index of the last step a forecast may use).

    The newest cutoff leaves a full horizon of actuals; older ones follow every ``step_size``
    steps. When the history is too short for that spacing the cutoffs move closer together,
    and when no full window fits, the newest cutoffs keep what actuals they have. Every cutoff
    leaves at least ``min_train`` steps of training history. Returns [] when none fits.
    """
    earliest = max(min_train - 1, 0)
    newest = n - 1 - h
    if newest < earliest:
        newest = n - 2
    if newest < earliest:
        return []

    room = newest - earliest
    if windows > 1 and (windows - 1) * step_size > room:
        step_size = max(1, room // (windows - 1))
    positions = [newest - i * step_size for i in range(windows)]
    return sorted(p for p in positions if p >= earliest)


def rolling_forecasts(
    model: ForecastModel,
    fitted: FittedModel,
    y: pd.Series,
    context: ModelContext,
    cutoffs: Sequence[int],
    h: int,
) -> np.ndarray:
    """Return point forecasts (one row per cutoff) that each see only ``y`` up to the cutoff.

    A ``Refilterable`` fitted model keeps its parameters and rebuilds its state on the prefix.
    Any other model is fitted once on the prefix before the first cutoff. Both then move
    along the cutoffs with ``update``, so no parameter is estimated per cutoff.
    """
    first = cutoffs[0]
    prefix = y.iloc[: first + 1]
    current = (
        fitted.refilter(prefix) if isinstance(fitted, Refilterable) else model.fit(prefix, context)
    )
    rows = [current.predict(h)]
    for previous, cutoff in itertools.pairwise(cutoffs):
        current = current.update(y.iloc[previous + 1 : cutoff + 1])
        rows.append(current.predict(h))
    return np.vstack(rows)


def residual_matrix(y: np.ndarray, forecasts: np.ndarray, cutoffs: Sequence[int]) -> np.ndarray:
    """Return ``actual - forecast`` per cutoff and horizon step; NaN where no actual exists."""
    h = forecasts.shape[1]
    padded = np.concatenate([np.asarray(y, dtype=float), np.full(h, np.nan)])
    actuals = np.vstack([padded[c + 1 : c + 1 + h] for c in cutoffs])
    return actuals - forecasts


def naive_change_residuals(y: np.ndarray, h: int) -> np.ndarray:
    """Return ``y[t + k] - y[t]`` for every origin ``t``: a model-free residual stand-in."""
    values = np.asarray(y, dtype=float)
    n = len(values)
    padded = np.concatenate([values, np.full(h, np.nan)])
    steps = np.arange(1, h + 1)
    return padded[np.arange(n)[:, None] + steps[None, :]] - values[:, None]


def conformal_offsets(
    residuals: np.ndarray, levels: Sequence[float], min_pooled: int = MIN_POOLED_RESIDUALS
) -> np.ndarray:
    """Return offsets of shape (len(levels), h) from a (windows, h) residual matrix.

    A horizon step with no residual in reach of pooling takes the offsets of the nearest step
    that has some. Raises ValueError when the matrix has no finite residual at all.
    """
    if not np.isfinite(residuals).any():
        raise ValueError("no finite residual to calibrate quantiles from")
    windows, h = residuals.shape
    radius = min(h, max(0, math.ceil((min_pooled / max(windows, 1) - 1) / 2)))
    offsets = np.full((len(levels), h), np.nan)
    for k in range(h):
        pooled = residuals[:, max(0, k - radius) : k + radius + 1].ravel()
        pooled = np.sort(pooled[np.isfinite(pooled)])
        if len(pooled):
            offsets[:, k] = [_conformal_order_statistic(pooled, level) for level in levels]
    return _fill_from_nearest_step(offsets)


def _conformal_order_statistic(sorted_sample: np.ndarray, level: float) -> float:
    n = len(sorted_sample)
    if level >= 0.5:
        rank = min(n, math.ceil((n + 1) * level))
    else:
        rank = max(1, math.floor((n + 1) * level))
    return float(sorted_sample[rank - 1])


def _fill_from_nearest_step(offsets: np.ndarray) -> np.ndarray:
    frame = pd.DataFrame(offsets.T)
    return frame.ffill().bfill().to_numpy().T


def calibrate(
    model: ForecastModel,
    fitted: FittedModel,
    y: pd.Series,
    context: ModelContext,
    plan: CalibrationPlan,
) -> tuple[Calibration, tuple[str, ...]]:
    """Calibrate quantile offsets for ``fitted`` on its training series ``y``.

    Falls back to the spread of ``y[t + k] - y[t]`` (with a note) when no rolling-origin
    window fits or the model cannot be fitted on the shorter prefix.
    """
    values = y.to_numpy(dtype=float)
    cutoffs = calibration_cutoffs(len(y), plan.h, plan.windows, plan.step_size, plan.min_train)
    residuals: np.ndarray | None = None
    note = ""
    if cutoffs:
        try:
            forecasts = rolling_forecasts(model, fitted, y, context, cutoffs, plan.h)
            residuals = residual_matrix(values, forecasts, cutoffs)
        except InsufficientHistoryError as error:
            note = f"the model cannot be fitted on the calibration prefix ({error})"
    else:
        note = f"{len(y)} steps leave no rolling-origin window after {plan.min_train} steps"

    if residuals is not None and np.isfinite(residuals).any():
        offsets = conformal_offsets(residuals, plan.levels)
        return Calibration(plan.levels, offsets, len(cutoffs), "rolling_origin"), ()

    if not note:
        note = "the rolling-origin windows have no observed actual"
    changes = naive_change_residuals(values, plan.h)
    if not np.isfinite(changes).any():
        changes = np.zeros((1, plan.h))
    offsets = conformal_offsets(changes, plan.levels)
    message = f"quantiles are the spread of past {plan.h}-step changes, not calibrated: {note}"
    return Calibration(plan.levels, offsets, 0, "naive_changes"), (message,)


@dataclass(frozen=True)
class CalibrationPlan:
    """Calibration layout: ``windows`` cutoffs every ``step_size`` steps, ``h`` steps ahead."""

    h: int
    levels: tuple[float, ...]
    windows: int
    step_size: int
    min_train: int

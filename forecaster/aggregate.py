"""Aggregate a history to the model step.

A model step is labelled by its start and covers ``[label, label + step)``. Labels are whole
multiples of the step since the Unix epoch, like the history grid. Samples inside one step
are combined with the configured aggregation, and a step without any observed sample is NaN.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pandas.api.typing import SeriesGroupBy

from forecaster.errors import ConfigError
from forecaster.history import History
from forecaster.settings import Aggregation

logger = logging.getLogger(__name__)

PERCENTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def aggregate(history: History, step: pd.Timedelta, how: Aggregation) -> pd.Series:
    """Combine the samples of every model step that contains a history grid point.

    The first and last steps may be partial; use ``complete_steps`` to drop them. Raises
    ConfigError when the model step is shorter than the history step, because most model
    steps would then have no sample at all.
    """
    check_step(history, step)
    if len(history.values) == 0:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC").as_unit("ns"), dtype=float)

    step_ns = step.value
    index = pd.DatetimeIndex(history.values.index).as_unit("ns")
    labels = index.asi8 // step_ns * step_ns
    grouped = pd.Series(history.values.to_numpy(dtype=float)).groupby(labels, sort=True)
    combined = _combine(grouped, how)

    index = pd.DatetimeIndex(combined.index.to_numpy().astype("datetime64[ns]"), tz="UTC")
    return pd.Series(combined.to_numpy(dtype=float), index=index, name=history.name)


def complete_steps(history: History, step: pd.Timedelta, how: Aggregation) -> pd.Series:
    """Aggregate like ``aggregate`` but keep only model steps the history covers fully.

    A step is complete when every history grid point inside it lies within
    ``[history.start, history.end]``, so a step still in progress is never used.
    """
    steps = aggregate(history, step, how)
    if steps.empty:
        return steps

    first_usable = history.start
    last_usable = history.end + history.step - step
    keep = (steps.index >= first_usable) & (steps.index <= last_usable)
    return steps[keep]


def check_step(history: History, step: pd.Timedelta) -> None:
    """Raise ConfigError when the model step is shorter than the history step."""
    if step < history.step:
        raise ConfigError(
            "forecast.step_seconds",
            step.total_seconds(),
            f"must be at least the history step of {history.name!r} "
            f"({history.step.total_seconds():g} s)",
        )


def _combine(grouped: SeriesGroupBy, how: Aggregation) -> pd.Series:
    if how == "mean":
        return grouped.mean()
    if how == "max":
        return grouped.max()
    if how in PERCENTILES:
        return grouped.quantile(PERCENTILES[how])
    allowed = ", ".join(["mean", "max", *PERCENTILES])
    raise ConfigError("forecast.aggregation", how, f"allowed: {allowed}")


def observed_share(y: pd.Series) -> float:
    """Return the share of model steps that have a value, in [0, 1]; 0 for no steps."""
    if len(y) == 0:
        return 0.0
    return float(np.isfinite(y.to_numpy(dtype=float)).mean())

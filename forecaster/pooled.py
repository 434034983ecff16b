"""Demand of workloads that share a node pool, forecast as one series.

The pool needs capacity for the sum of the demands, and the upper quantile of a sum is lower
than the sum of upper quantiles whenever the workloads do not peak together. So the histories
are summed on a common grid first and the sum is forecast, instead of adding forecasts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from forecaster.aggregate import complete_steps
from forecaster.engine import ForecastEngine
from forecaster.forecast import Forecast
from forecaster.history import History

logger = logging.getLogger(__name__)


def pooled_history(histories: Sequence[History], name: str) -> History:
    """Sum ``histories`` on the grid of the coarsest step among them.

    A history with a finer step is first averaged to that step (complete steps only), which
    keeps rates in their unit. A grid point where any workload is missing is missing in the
    sum, because a missing sample is not zero demand. Raises ValueError for no histories.
    """
    if not histories:
        raise ValueError(f"pool {name!r}: no histories to sum")
    step = max(history.step for history in histories)
    columns = [_on_step(history, step) for history in histories]
    start = min(column.index[0] for column in columns if len(column))
    end = max(column.index[-1] for column in columns if len(column))
    grid = pd.date_range(start, end, freq=step, tz="UTC").as_unit("ns")
    frame = pd.concat([column.reindex(grid) for column in columns], axis=1)
    total = frame.sum(axis=1, min_count=len(columns))
    logger.debug("Pool %r: summed %d histories on %d grid points", name, len(columns), len(grid))
    return History(name, total.rename(name), step)


def forecast_pool(engine: ForecastEngine, histories: Sequence[History], name: str) -> Forecast:
    """Fit the engine on the summed history of a pool and forecast it."""
    return engine.fit(pooled_history(histories, name)).predict()


def _on_step(history: History, step: pd.Timedelta) -> pd.Series:
    same_step = history.step == step
    values = history.values if same_step else complete_steps(history, step, "mean")
    return values.set_axis(pd.DatetimeIndex(values.index).as_unit("ns"))

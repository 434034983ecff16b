"""Fit many series at once in a process pool, for the scheduled refit of a fleet.

Fitting is CPU-bound Python and statsmodels code, so processes, not threads, give parallelism.
A series whose history is unusable (``DataError``) does not stop the others: its error is
returned in place of a fitted forecaster, so the caller can hold that workload's capacity.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from forecaster.engine import FittedForecaster, ForecastEngine
from forecaster.errors import DataError
from forecaster.history import History
from forecaster.settings import ForecastSettings

logger = logging.getLogger(__name__)

FitResult = FittedForecaster | DataError


def fit_many(
    settings: ForecastSettings,
    histories: Sequence[History],
    model_options: Mapping[str, Mapping[str, Any]] | None = None,
    max_workers: int | None = None,
) -> dict[str, FitResult]:
    """Fit one forecaster per history; return them (or their DataError) by history name.

    ``max_workers`` defaults to ``os.cpu_count()``. History names must be unique.
    """
    names = [history.name for history in histories]
    if len(set(names)) != len(names):
        raise ValueError(f"history names must be unique to key the results, got {names}")
    workers = max_workers or os.cpu_count() or 1
    options = dict(model_options or {})
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(
            pool.map(
                _fit_one,
                [settings] * len(histories),
                [options] * len(histories),
                histories,
            )
        )
    failed = sum(isinstance(result, DataError) for result in results)
    logger.info("Fitted %d series with %d workers, %d failed", len(results), workers, failed)
    return dict(zip(names, results, strict=True))


def _fit_one(
    settings: ForecastSettings, options: Mapping[str, Mapping[str, Any]], history: History
) -> FitResult:
    try:
        return ForecastEngine(settings, options).fit(history)
    except DataError as error:
        logger.warning("Cannot fit %r: %s", history.name, error)
        return error

"""Forecasts of the live cycle: each workload's fitted forecaster, refreshed at ``now``.

``ForecastRefresher.refresh(workload, now)`` reads the workload's history up to ``now``, refits
its forecaster when ``forecast.refit_interval_seconds`` has passed since the last fit (or when
asked to), else updates it with the new steps, and predicts. A failure of any kind the sources,
the engine or the data can raise becomes an unusable ``DataStatus``: that workload's floors and
the floors of its pools hold, and the other workloads go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from forecaster.errors import (
    ConfigError,
    DataError,
    InsufficientHistoryError,
    MissingDataError,
    PartialDataError,
    PeakcastError,
    TransientError,
)
from forecaster.forecast import Forecast
from forecaster.history import History
from scaler.backtest.forecasting import FittedForecaster, ForecastEngine
from scaler.core.decision import DataStatus
from scaler.core.policy import Floors, assess_history
from scaler.histories import HistoryLoader
from scaler.settings import Settings, WorkloadSettings

logger = logging.getLogger(__name__)

# Failures that one workload's refresh turns into held floors. They are peakcast's own errors
# (missing or partial data, an unreachable source, an invalid query), the numeric and indexing
# errors a model can raise on odd data (numpy's LinAlgError is a ValueError), and network or
# file errors.
REFRESH_ERRORS: tuple[type[BaseException], ...] = (
    PeakcastError,
    ValueError,
    ArithmeticError,
    LookupError,
    OSError,
)


def error_kind(error: BaseException) -> str:
    """Return the ``kind`` label under which ``error`` is counted in the error metric."""
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (MissingDataError, "data_missing"),
        (PartialDataError, "data_partial"),
        (InsufficientHistoryError, "history_too_short"),
        (DataError, "data_invalid"),
        (TransientError, "source_unavailable"),
        (ConfigError, "config"),
        (OSError, "source_unavailable"),
    )
    for kind_type, kind in kinds:
        if isinstance(error, kind_type):
            return kind
    return "forecast_failed"


@dataclass(frozen=True)
class WorkloadView:
    """The newest refresh result of one workload, as planning reads it.

    ``forecast`` is the newest forecast made, kept from an earlier refresh when this one
    failed. ``observed`` is the newest observed demand sample, in the demand's unit.
    """

    workload: str
    refreshed_at: pd.Timestamp
    status: DataStatus
    forecast: Forecast | None
    observed: float | None = None
    error_kind: str | None = None


class RefreshObserver(Protocol):
    """Receives every refresh, full fit and error (the service's metrics)."""

    def refreshed(self, view: WorkloadView, now: pd.Timestamp) -> None: ...

    def fitted(self, workload: str, model: str, seconds: float) -> None: ...

    def error(self, kind: str) -> None: ...


@dataclass
class _Fit:
    fitted: FittedForecaster
    fitted_at: pd.Timestamp


class ForecastRefresher:
    """Keeps one fitted forecaster and the newest refresh result per workload; thread-safe."""

    def __init__(
        self,
        settings: Settings,
        loader: HistoryLoader,
        engine: ForecastEngine,
        observer: RefreshObserver,
        max_status_age: pd.Timedelta,
    ) -> None:
        self._settings = settings
        self._loader = loader
        self._engine = engine
        self._observer = observer
        self.max_status_age = max_status_age
        self._refit = pd.Timedelta(seconds=settings.forecast.refit_interval_seconds)
        self._lock_timeout = settings.service.workload_timeout_seconds
        self._fits: dict[str, _Fit] = {}
        self._views: dict[str, WorkloadView] = {}
        self._views_lock = threading.Lock()
        self._workload_locks = {w.name: threading.Lock() for w in settings.workloads}
        # Per workload, the error kind of its current run of unusable refreshes and its length.
        self._unusable: dict[str, tuple[str, int]] = {}

    def refresh(
        self, workload: WorkloadSettings, now: pd.Timestamp, *, refit: bool = False
    ) -> WorkloadView:
        """Read ``workload``'s history up to ``now``, forecast it, and keep the result.

        Never raises for the errors in ``REFRESH_ERRORS``: they become an unusable status.
        """
        lock = self._workload_locks[workload.name]
        if not lock.acquire(timeout=self._lock_timeout):
            reason = "the previous refresh of this workload is still running"
            return self.mark_failed(workload.name, now, reason, "timeout")
        try:
            return self._refresh_locked(workload, now, refit)
        finally:
            lock.release()

    def mark_failed(self, workload: str, now: pd.Timestamp, reason: str, kind: str) -> WorkloadView:
        """Record that ``workload`` could not be refreshed at ``now``, so its floors hold."""
        previous = self.view(workload)
        coverage = previous.status.coverage if previous else 0.0
        last_observed = previous.status.last_observed if previous else None
        status = DataStatus(workload, coverage, last_observed, False, reason)
        view = WorkloadView(
            workload=workload,
            refreshed_at=now,
            status=status,
            forecast=previous.forecast if previous else None,
            observed=previous.observed if previous else None,
            error_kind=kind,
        )
        self._report_unusable(workload, now, kind, f"refresh failed ({kind}): {reason}")
        return self._keep(view, now)

    def view(self, workload: str) -> WorkloadView | None:
        """Return the newest refresh result of ``workload``, or None before the first one."""
        with self._views_lock:
            return self._views.get(workload)

    def stale_workloads(self, now: pd.Timestamp) -> list[WorkloadSettings]:
        """Return the workloads not refreshed within the status age limit before ``now``."""
        stale = []
        for workload in self._settings.workloads:
            view = self.view(workload.name)
            if view is None or now - view.refreshed_at > self.max_status_age:
                stale.append(workload)
        return stale

    def _refresh_locked(
        self, workload: WorkloadSettings, now: pd.Timestamp, refit: bool
    ) -> WorkloadView:
        name = workload.name
        try:
            history = self._loader.load_until(workload, now).until(now)
            status = assess_history(history, now, self._settings)
            fitted = self._fitted(name, history, now, refit)
            forecast = fitted.predict()
        except REFRESH_ERRORS as error:
            return self.mark_failed(name, now, str(error), error_kind(error))

        view = WorkloadView(name, now, status, forecast, _newest_value(history))
        if status.usable:
            self._report_usable(name, now)
        else:
            self._report_unusable(name, now, "data_missing", f"data not usable: {status.reason}")
        return self._keep(view, now)

    def _report_unusable(self, workload: str, now: pd.Timestamp, kind: str, reason: str) -> None:
        """Count every unusable refresh; log the first of a run of one kind as a warning."""
        with self._views_lock:
            previous_kind, count = self._unusable.get(workload, ("", 0))
            count = count + 1 if previous_kind == kind else 1
            self._unusable[workload] = (kind, count)
        logger.log(
            logging.WARNING if count == 1 else logging.DEBUG,
            "workload %s: %s at %s; its floors and its pools' floors hold (%d in a row)",
            workload,
            reason,
            now.isoformat(),
            count,
            extra={"workload": workload, "error_kind": kind},
        )
        self._observer.error(kind)

    def _report_usable(self, workload: str, now: pd.Timestamp) -> None:
        with self._views_lock:
            kind, count = self._unusable.pop(workload, ("", 0))
        if count:
            logger.info(
                "workload %s: data usable again at %s after %d refreshes with %s",
                workload,
                now.isoformat(),
                count,
                kind,
                extra={"workload": workload},
            )

    def _fitted(
        self, name: str, history: History, now: pd.Timestamp, refit: bool
    ) -> FittedForecaster:
        fit = self._fits.get(name)
        if fit is not None and not refit and now - fit.fitted_at < self._refit:
            fit.fitted = fit.fitted.update(history)
            return fit.fitted

        started = time.monotonic()
        fitted = self._engine.fit(history)
        seconds = time.monotonic() - started
        model = str(getattr(fitted, "model_name", type(fitted).__name__))
        logger.info(
            "workload %s: %s forecaster at %s (%s, %.2f s)",
            name,
            "refitted the" if fit is not None else "fitted its first",
            now.isoformat(),
            model,
            seconds,
            extra={"workload": name},
        )
        self._fits[name] = _Fit(fitted, now)
        self._observer.fitted(name, model, seconds)
        return fitted

    def _keep(self, view: WorkloadView, now: pd.Timestamp) -> WorkloadView:
        with self._views_lock:
            previous = self._views.get(view.workload)
            # A refresh that outlived its timeout must not replace a newer result.
            if previous is None or previous.refreshed_at <= view.refreshed_at:
                self._views[view.workload] = view
        self._observer.refreshed(view, now)
        return view


def held_forecast(
    workload: WorkloadSettings, current: Floors, aligned: Mapping[str, Forecast]
) -> Forecast:
    """Build a flat forecast that plans a workload without one at its current replica floor.

    Its own floors hold anyway, because its data status is unusable. Placing it at its current
    floor keeps the other workloads from planning with capacity it still occupies, which they
    would do if it counted as zero demand.
    """
    capacity = workload.capacity
    replicas = current.workloads.get(workload.name, capacity.min_replicas)
    demand = replicas * capacity.throughput_per_replica * capacity.target_utilization
    template = next(iter(aligned.values()))
    values = np.full(template.h, float(demand))
    logger.warning(
        "workload %s: no forecast yet; planned at its current floor of %d replicas, and "
        "its floors hold",
        workload.name,
        replicas,
        extra={"workload": workload.name},
    )
    return Forecast(
        name=workload.name,
        cutoff=template.cutoff,
        step=template.step,
        point=values,
        quantiles={level: values.copy() for level in template.quantiles},
        model="held",
        notes=("no forecast yet: planned at the current replica floor",),
    )


def _newest_value(history: History) -> float | None:
    observed = history.values.dropna()
    if observed.empty:
        return None
    value = float(observed.iloc[-1])
    return value if np.isfinite(value) else None

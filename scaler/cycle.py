"""The live planning cycle of ``peakcast run``: history, forecasts, policy and actuator at ``now``.

Two steps share one ``LiveCycle``, and every time they use comes from the caller:

- ``refresh(workload, now)`` reads the workload's history up to ``now``, refits its forecaster
  when ``forecast.refit_interval_seconds`` has passed since the last fit (or when asked to),
  else updates it with the new steps, and predicts. A failure of any kind the sources, the
  engine or the data can raise becomes an unusable ``DataStatus``: that workload's floors and
  the floors of its pools hold, and the other workloads go on.
- ``plan(now)`` reads the current floors from the actuator, builds the requirement schedule from
  the newest forecast of every workload, decides with the policy and its state, and applies.

The policy state lives in memory. A cycle that starts without state (after a start, a restart
or a new leader) counts the floors read back from the cluster as recommendations made just
before it, so no floor drops within the first stabilisation window. That is the rule the
policy applies anyway: scale-down needs a whole window of low recommendations, and a new
process has seen none.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

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
from scaler.actuators.base import Actuator, ApplyResult
from scaler.backtest.forecasting import (
    FittedForecaster,
    ForecastEngine,
    default_engine_factory,
)
from scaler.core.capacity import Fleet
from scaler.core.decision import CycleDecision, DataStatus
from scaler.core.policy import Floors, PolicyState, Recommendation, assess_history, decide
from scaler.core.requirements import Requirements, requirements_from_forecasts
from scaler.histories import HistoryLoader
from scaler.settings import Settings, WorkloadSettings

logger = logging.getLogger(__name__)

Clock = Callable[[], pd.Timestamp]

# Failures one workload's refresh turns into held floors: peakcast's own errors (missing or
# partial data, an unreachable source, an invalid query), numeric and indexing errors a model
# can raise on odd data (numpy's LinAlgError is a ValueError), and network or file errors.
REFRESH_ERRORS: tuple[type[BaseException], ...] = (
    PeakcastError,
    ValueError,
    ArithmeticError,
    LookupError,
    OSError,
)

# Seeded recommendations count as made this long before the first cycle, because the policy
# re-records the current cycle and drops entries made at ``now``.
SEED_AGE = pd.Timedelta(seconds=1)


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
    """What the newest refresh of one workload left for planning.

    ``forecast`` is the newest forecast made, kept from an earlier refresh when this one
    failed. ``observed`` is the newest observed demand sample, in the demand's unit.
    """

    workload: str
    refreshed_at: pd.Timestamp
    status: DataStatus
    forecast: Forecast | None
    observed: float | None = None
    error_kind: str | None = None


@dataclass(frozen=True)
class CycleOutcome:
    """One planning cycle: the decision, what the actuator did, and whether it applied."""

    decision: CycleDecision
    results: tuple[ApplyResult, ...]
    applied: bool
    note: str = ""


class CycleObserver:
    """Receives what the cycle does; the service's metrics implement it. Does nothing here."""

    def refreshed(self, view: WorkloadView, now: pd.Timestamp) -> None:
        """Called after every refresh of one workload, failed or not."""

    def fitted(self, workload: str, model: str, seconds: float) -> None:
        """Called after a full fit of one workload's forecaster."""

    def planned(self, outcome: CycleOutcome, current: Floors) -> None:
        """Called after a planning cycle that reached a decision."""

    def error(self, kind: str) -> None:
        """Called once per error that made a workload or a cycle hold."""


@dataclass
class _Fit:
    fitted: FittedForecaster
    fitted_at: pd.Timestamp


class LiveCycle:
    """Forecasts per workload, and plans and applies with one policy state."""

    def __init__(
        self,
        settings: Settings,
        loader: HistoryLoader,
        actuator: Actuator,
        *,
        engine: ForecastEngine | None = None,
        observer: CycleObserver | None = None,
        max_status_age_seconds: float | None = None,
    ) -> None:
        self._settings = settings
        self._loader = loader
        self._actuator = actuator
        self._engine = engine or default_engine_factory()(settings.forecast)
        self._observer = observer or CycleObserver()
        self._fleet = Fleet(settings.pools, settings.workloads)
        self._refit = pd.Timedelta(seconds=settings.forecast.refit_interval_seconds)
        default_age = max(
            settings.policy.stale_data_seconds, 2 * settings.service.refresh_interval_seconds
        )
        self._max_status_age = pd.Timedelta(seconds=max_status_age_seconds or default_age)
        self._lock_timeout = settings.service.workload_timeout_seconds
        self._fits: dict[str, _Fit] = {}
        self._views: dict[str, WorkloadView] = {}
        self._views_lock = threading.Lock()
        self._workload_locks = {w.name: threading.Lock() for w in settings.workloads}
        self._state: PolicyState | None = None

    # --- refresh -----------------------------------------------------------------------------

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
        logger.warning(
            "workload %s: refresh at %s failed (%s): %s; its floors and its pools' floors hold",
            workload,
            now.isoformat(),
            kind,
            reason,
            extra={"workload": workload, "error_kind": kind},
        )
        self._observer.error(kind)
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
            if view is None or now - view.refreshed_at > self._max_status_age:
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
        if not status.usable:
            logger.warning(
                "workload %s: data at %s is not usable: %s; its floors hold",
                name,
                now.isoformat(),
                status.reason,
                extra={"workload": name},
            )
            self._observer.error("data_missing")
        return self._keep(view, now)

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

    # --- plan --------------------------------------------------------------------------------

    def reset_state(self) -> None:
        """Forget the policy state, for example when this replica stops being the leader."""
        self._state = None

    def plan(self, now: pd.Timestamp, may_apply: Callable[[], bool]) -> CycleOutcome | None:
        """Decide every floor at ``now`` and apply them while ``may_apply()`` is true.

        ``may_apply`` is checked before the floors are read and again right before the
        actuator is called; when it is false the cycle is abandoned and nothing is written.
        Returns None when the cycle was abandoned before a decision or could not read the
        current floors.
        """
        if not may_apply():
            logger.info("Cycle at %s abandoned before it started", now.isoformat())
            return None
        logger.info("Cycle at %s started", now.isoformat())
        try:
            raw = self._actuator.current_floors()
        except PeakcastError as error:
            logger.warning(
                "Cycle at %s skipped: the current floors could not be read: %s",
                now.isoformat(),
                error,
            )
            self._observer.error("floors_unreadable")
            return None
        current = _floors(raw)
        state = self._state if self._state is not None else self._seed_state(now, current)
        requirements, data = self._inputs(now)
        result = decide(now, requirements, current, state, data, self._settings)

        if not may_apply():
            logger.warning(
                "Cycle at %s abandoned before applying: this replica may no longer act; "
                "nothing was written",
                now.isoformat(),
            )
            return CycleOutcome(result.decision, (), applied=False, note="abandoned")
        logger.info(
            "Applying %d floors of the cycle at %s",
            len(result.decision.all_floors()),
            now.isoformat(),
        )
        results = tuple(self._actuator.apply(result.decision))
        self._state = result.state
        outcome = CycleOutcome(result.decision, results, applied=True)
        self._report(outcome)
        self._observer.planned(outcome, current)
        return outcome

    def _inputs(self, now: pd.Timestamp) -> tuple[Requirements | None, list[DataStatus]]:
        data = []
        forecasts: dict[str, Forecast] = {}
        for workload in self._settings.workloads:
            view = self.view(workload.name)
            data.append(self._status_at(workload.name, view, now))
            if view is not None and view.forecast is not None:
                forecasts[workload.name] = view.forecast

        requirements, problem = self._requirements(forecasts)
        if problem is not None:
            logger.warning("Cycle at %s holds every floor: %s", now.isoformat(), problem)
            data = [
                replace(status, usable=False, reason=problem) if status.usable else status
                for status in data
            ]
        return requirements, data

    def _status_at(self, name: str, view: WorkloadView | None, now: pd.Timestamp) -> DataStatus:
        if view is None:
            return DataStatus(name, 0.0, None, False, "history has not been read yet")
        age = now - view.refreshed_at
        if age > self._max_status_age:
            reason = (
                f"history was last read at {view.refreshed_at.isoformat()}, "
                f"{age.total_seconds():.0f} s ago, beyond the "
                f"{self._max_status_age.total_seconds():.0f} s limit"
            )
            return replace(view.status, usable=False, reason=reason)
        return view.status

    def _requirements(
        self, forecasts: dict[str, Forecast]
    ) -> tuple[Requirements | None, str | None]:
        missing = [w.name for w in self._settings.workloads if w.name not in forecasts]
        if missing:
            return None, f"no forecast yet for workload(s) {', '.join(missing)}"
        aligned, problem = align_forecasts(forecasts)
        if problem is not None:
            return None, problem
        try:
            return requirements_from_forecasts(self._settings, self._fleet, aligned), None
        except ValueError as error:
            return None, f"the requirement schedule could not be built: {error}"

    def _seed_state(self, now: pd.Timestamp, current: Floors) -> PolicyState:
        at = now - SEED_AGE
        recommendations: dict[str, tuple[Recommendation, ...]] = {}
        for name, value in current.pools.items():
            recommendations[f"pool/{name}"] = (Recommendation(at, value),)
        for name, value in current.workloads.items():
            recommendations[f"workload/{name}"] = (Recommendation(at, value),)
        logger.info(
            "Cycle at %s starts without policy state: the current floors (%s) count as "
            "recommendations, so none drops within the first %d s stabilisation window",
            now.isoformat(),
            ", ".join(f"{key}={entries[0].value}" for key, entries in recommendations.items())
            or "none readable",
            self._settings.policy.stabilization_window_seconds,
        )
        return PolicyState(recommendations=recommendations)

    def _report(self, outcome: CycleOutcome) -> None:
        summary = ", ".join(
            f"{r.floor.kind}/{r.floor.name}={r.new} {r.status}" for r in outcome.results
        )
        logger.info(
            "Cycle at %s applied: %s", outcome.decision.at.isoformat(), summary or "no floors"
        )
        for result in outcome.results:
            if result.status in ("failed", "conflict"):
                self._observer.error(f"apply_{result.status}")


def align_forecasts(
    forecasts: Mapping[str, Forecast],
) -> tuple[dict[str, Forecast], str | None]:
    """Cut every forecast to start after the newest cutoff and to the shortest common horizon.

    Workloads are refreshed one by one, so a refresh across a model-step boundary leaves
    forecasts with different cutoffs; the requirement schedule needs one grid. Returns the
    cut forecasts, or a problem sentence when they share no step.
    """
    steps = {forecast.step for forecast in forecasts.values()}
    if len(steps) != 1:
        return {}, f"the forecasts use different steps ({', '.join(map(str, sorted(steps)))})"
    step = steps.pop()
    cutoff = max(forecast.cutoff for forecast in forecasts.values())
    skips = {name: int((cutoff - f.cutoff) / step) for name, f in forecasts.items()}
    h = min(f.h - skips[name] for name, f in forecasts.items())
    if h < 1:
        oldest = min(forecasts.values(), key=lambda f: f.cutoff)
        return {}, (
            f"the forecast of workload {oldest.name} (cutoff {oldest.cutoff.isoformat()}) ends "
            f"before the newest cutoff {cutoff.isoformat()}"
        )
    aligned = {}
    for name, forecast in forecasts.items():
        rows = slice(skips[name], skips[name] + h)
        aligned[name] = replace(
            forecast,
            cutoff=cutoff,
            point=forecast.point[rows],
            quantiles={level: values[rows] for level, values in forecast.quantiles.items()},
        )
    return aligned, None


def _floors(raw: Mapping[tuple[str, str], int | None]) -> Floors:
    pools = {
        name: value for (kind, name), value in raw.items() if kind == "pool" and value is not None
    }
    workloads = {
        name: value
        for (kind, name), value in raw.items()
        if kind == "workload" and value is not None
    }
    return Floors(pools=pools, workloads=workloads)


def _newest_value(history: History) -> float | None:
    observed = history.values.dropna()
    if observed.empty:
        return None
    value = float(observed.iloc[-1])
    return value if np.isfinite(value) else None

"""The live planning cycle of ``peakcast run``: forecasts, policy and actuator at ``now``.

Two steps share one ``LiveCycle``, and every time they use comes from the caller:

- ``refresh(workload, now)`` reads history and forecasts one workload (see
  ``scaler.service.forecasts``). A failure becomes an unusable status, so that workload's
  floors and the floors of its pools hold while the other workloads go on.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import pandas as pd

from forecaster.errors import PeakcastError
from forecaster.forecast import Forecast, align_forecasts
from forecaster.timegrid import format_span
from scaler.actuators.base import Actuator, ApplyResult, RestoresGuardrailState
from scaler.backtest.forecasting import ForecastEngine, default_engine_factory
from scaler.core.capacity import Fleet
from scaler.core.decision import CycleDecision, DataStatus, FloorDecision
from scaler.core.guardrails import GuardrailState
from scaler.core.policy import Floors, PolicyState, Recommendation, decide
from scaler.core.requirements import Requirements, requirements_from_forecasts
from scaler.histories import HistoryLoader
from scaler.journal import DecisionJournal
from scaler.service.forecasts import (
    ForecastRefresher,
    WorkloadView,
    held_forecast,
)
from scaler.settings import Settings, WorkloadSettings

logger = logging.getLogger(__name__)

# Raises one planned floor at a time before the guardrails apply (``decide(..., lift=...)``).
FloorLift = Callable[[FloorDecision, pd.Timestamp], FloorDecision]

Clock = Callable[[], pd.Timestamp]

# Seeded recommendations count as made this long before the first cycle, because the policy
# re-records the current cycle and drops entries made at ``now``.
SEED_AGE = pd.Timedelta(seconds=1)


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
        journal: DecisionJournal | None = None,
        lift: FloorLift | None = None,
    ) -> None:
        self._settings = settings
        # With live signals, ``lift`` raises each planned floor to the reactive floor held.
        self._lift = lift
        # The decision journal (None when journal.enabled is false) records every decision.
        self._journal = journal if journal is not None else DecisionJournal.from_settings(settings)
        self._actuator = actuator
        self._observer = observer or CycleObserver()
        self._fleet = Fleet(settings.pools, settings.workloads)
        default_age = max(
            settings.policy.stale_data_seconds, 2 * settings.service.refresh_interval_seconds
        )
        self._max_status_age = pd.Timedelta(seconds=max_status_age_seconds or default_age)
        self._forecasts = ForecastRefresher(
            settings,
            loader,
            engine or default_engine_factory()(settings.forecast),
            self._observer,
            self._max_status_age,
        )
        self._state: PolicyState | None = None

    # --- refresh -----------------------------------------------------------------------------

    def refresh(
        self, workload: WorkloadSettings, now: pd.Timestamp, *, refit: bool = False
    ) -> WorkloadView:
        """Read ``workload``'s history up to ``now`` and forecast it.

        The errors in ``scaler.service.forecasts.REFRESH_ERRORS`` become an unusable status.
        """
        return self._forecasts.refresh(workload, now, refit=refit)

    def mark_failed(self, workload: str, now: pd.Timestamp, reason: str, kind: str) -> WorkloadView:
        """Record that ``workload`` could not be refreshed at ``now``, so its floors hold."""
        return self._forecasts.mark_failed(workload, now, reason, kind)

    def view(self, workload: str) -> WorkloadView | None:
        """Return the newest refresh result of ``workload``, or None before the first one."""
        return self._forecasts.view(workload)

    def stale_workloads(self, now: pd.Timestamp) -> list[WorkloadSettings]:
        """Return the workloads not refreshed within the status age limit before ``now``."""
        return self._forecasts.stale_workloads(now)

    # --- plan --------------------------------------------------------------------------------

    def guardrail_state(self) -> GuardrailState:
        """Return the guardrail state of the last applied cycle (empty before the first)."""
        state = self._state
        return state.guardrails if state is not None else GuardrailState()

    def reset_state(self) -> None:
        """Forget the policy state, for example when this replica stops being the leader."""
        self._state = None

    def plan(self, now: pd.Timestamp, may_apply: Callable[[], bool]) -> CycleOutcome | None:
        """Decide every floor at ``now`` and apply them while ``may_apply()`` is true.

        ``may_apply`` is checked before the floors are read and again right before the
        actuator is called. When it is false, the cycle is abandoned and nothing is written.
        Returns None when the cycle ended before a decision, either abandoned or unable to
        read the current floors.
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
        requirements, data = self._inputs(now, current)
        result = decide(
            now, requirements, current, state, data, self._settings, lift=self._lift_at(now)
        )

        if not may_apply():
            logger.warning(
                "Cycle at %s abandoned before applying: this replica may no longer act; "
                "nothing was written",
                now.isoformat(),
            )
            abandoned = CycleOutcome(result.decision, (), applied=False, note="abandoned")
            self._record(abandoned)
            return abandoned
        logger.info(
            "Applying %d floors of the cycle at %s",
            len(result.decision.all_floors()),
            now.isoformat(),
        )
        results = tuple(self._actuator.apply(result.decision))
        self._state = result.state
        outcome = CycleOutcome(result.decision, results, applied=True)
        self._report(outcome)
        self._record(outcome)
        self._observer.planned(outcome, current)
        return outcome

    def _lift_at(self, now: pd.Timestamp) -> Callable[[FloorDecision], FloorDecision] | None:
        lift = self._lift
        if lift is None:
            return None

        def lift_now(floor: FloorDecision) -> FloorDecision:
            return lift(floor, now)

        return lift_now

    def _inputs(
        self, now: pd.Timestamp, current: Floors
    ) -> tuple[Requirements | None, list[DataStatus]]:
        data = []
        forecasts: dict[str, Forecast] = {}
        for workload in self._settings.workloads:
            view = self.view(workload.name)
            data.append(self._status_at(workload.name, view, now))
            if view is not None and view.forecast is not None:
                forecasts[workload.name] = view.forecast

        requirements, problem = self._requirements(forecasts, current)
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
                f"{format_span(age)} ago, beyond the {format_span(self._max_status_age)} limit"
            )
            return replace(view.status, usable=False, reason=reason)
        return view.status

    def _requirements(
        self, forecasts: dict[str, Forecast], current: Floors
    ) -> tuple[Requirements | None, str | None]:
        if not forecasts:
            return None, "no workload has a forecast yet"
        aligned, problem = align_forecasts(forecasts)
        if problem is not None:
            return None, problem
        for workload in self._settings.workloads:
            if workload.name not in aligned:
                aligned[workload.name] = held_forecast(workload, current, aligned)
        try:
            return requirements_from_forecasts(self._settings, self._fleet, aligned), None
        except ValueError as error:
            return None, f"the requirement schedule could not be built: {error}"

    def _seed_state(self, now: pd.Timestamp, current: Floors) -> PolicyState:
        # NOTE: the recommendations of the stabilisation window are kept in memory only, not in
        # annotations, so a restart begins a new window at the current floors.
        at = now - SEED_AGE
        recommendations: dict[str, tuple[Recommendation, ...]] = {}
        for name, value in current.pools.items():
            recommendations[f"pool/{name}"] = (Recommendation(at, value),)
        for name, value in current.workloads.items():
            recommendations[f"workload/{name}"] = (Recommendation(at, value),)
        logger.info(
            "Cycle at %s starts without policy state: the current floors (%s) count as "
            "recommendations, so none drops within the first %d s stabilization window",
            now.isoformat(),
            ", ".join(f"{key}={entries[0].value}" for key, entries in recommendations.items())
            or "none readable",
            self._settings.policy.stabilization_window_seconds,
        )
        return PolicyState(recommendations=recommendations, guardrails=self._restored_guardrails())

    def _restored_guardrails(self) -> GuardrailState:
        """Read the cooldown clocks and today's budget usage back from the cluster."""
        actuator = self._actuator
        if not isinstance(actuator, RestoresGuardrailState):
            return GuardrailState()
        try:
            state = actuator.guardrail_state()
        except PeakcastError as error:
            logger.warning(
                "Budget usage and cooldowns could not be read back from the cluster, so today's "
                "budgets count from zero: %s",
                error,
            )
            return GuardrailState()
        if state.usage:
            logger.info(
                "Budget usage restored from the cluster: %s",
                ", ".join(
                    f"pool {name} {usage.gpu_hours:.1f} GPU-hours on {usage.day.isoformat()}"
                    for name, usage in sorted(state.usage.items())
                ),
            )
        return state

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

    def _record(self, outcome: CycleOutcome) -> None:
        if self._journal is None:
            return
        forecasts: dict[str, Forecast] = {}
        for workload in self._settings.workloads:
            view = self.view(workload.name)
            if view is not None and view.forecast is not None:
                forecasts[workload.name] = view.forecast
        self._journal.record(
            outcome.decision,
            outcome.results,
            applied=outcome.applied,
            source="service",
            note=outcome.note,
            forecasts=forecasts,
        )


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

"""The fast loop: live signals become immediate floor raises, beside the forecast.

One ``FastLoop.run_once(now)``:

1. reads every configured signal (``scaler.signals``) and merges its samples into the
   hysteresis buffer. A signal that cannot be read is reported, its run ends, and it changes
   nothing;
2. steps forecast-miss handling (``scaler.misses``) for workloads that compare live demand with
   the forecast, and requests an early refit on each miss;
3. turns every signal whose run holds, and every widened planning level, into a reactive floor,
   clamped to the pool's or workload's maximum;
4. passes the floors above their current value through the guardrails
   (``scaler.core.raise_guard``: pauses, budgets, step limits, cooldowns), records each floor
   at the value the guardrails allow in ``RaisedFloors``, and writes the floors that still rise
   (recorded in the decision journal with source ``fast_loop``).
   It never lowers a floor: lowering is left to the forecast policy, whose cycle lifts each
   floor to the reactive floor held (``lift``) for a whole stabilisation window after a signal
   last requested it.

Time comes in as ``now``. ``run_fast_cycle`` is the job function of ``peakcast run``, and
``combine_with_signals`` is the step of ``peakcast plan``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from forecaster.errors import PeakcastError
from forecaster.forecast import Forecast
from scaler.actuators.base import ApplyResult
from scaler.core.capacity import Fleet
from scaler.core.decision import RULE_REACTIVE, CycleDecision, FloorDecision, FloorKind
from scaler.core.guardrails import GuardrailState
from scaler.core.raise_guard import RaiseState, guard_raises
from scaler.journal import FAST_LOOP_SOURCE, DecisionJournal
from scaler.misses import MissRule, MissState, step
from scaler.settings import Settings
from scaler.signals.base import Reading, Signal, SignalKey
from scaler.signals.demand_above_forecast import NAME as DEMAND_ABOVE_FORECAST
from scaler.signals.hysteresis import NO_RUN, Run, SampleBuffer
from scaler.signals.outcome import (
    FastCycleOutcome,
    FastLoopObserver,
    SignalReport,
    SignalStatus,
)
from scaler.signals.raised import CombinedActuator, FloorId, RaisedFloor, lift_floor
from scaler.signals.widened import SIGNAL as FORECAST_MISS
from scaler.signals.widened import widened_floors

logger = logging.getLogger(__name__)

ForecastProvider = Callable[[str], Forecast | None]


@dataclass(frozen=True)
class _Observation:
    signal: Signal
    reading: Reading | None
    run: Run
    error: str | None = None


@dataclass(frozen=True)
class _Candidate:
    """A reactive floor that a held signal or a widened level requests."""

    floor: FloorId
    value: int
    source: str
    reason: str
    key: SignalKey | None = None  # None for a widened planning level
    cooling: bool = False


class FastLoop:
    """Reads live signals and raises floors at once; never lowers one."""

    def __init__(
        self,
        settings: Settings,
        signals: Sequence[Signal],
        actuator: CombinedActuator,
        *,
        forecasts: ForecastProvider | None = None,
        on_refit: Callable[[str], None] | None = None,
        observer: FastLoopObserver | None = None,
        guardrail_state: Callable[[], GuardrailState] = GuardrailState,
        journal: DecisionJournal | None = None,
    ) -> None:
        self._settings = settings
        self._signals = list(signals)
        self._actuator = actuator
        self._raised = actuator.raised
        self._forecasts = forecasts or (lambda name: None)
        self._on_refit = on_refit
        self._observer = observer or FastLoopObserver()
        self._fleet = Fleet(settings.pools, settings.workloads)
        self._buffer = SampleBuffer()
        self._last_raise: dict[SignalKey, RaisedFloor] = {}
        self._unreadable: set[SignalKey] = set()
        self._miss_rules = _miss_rules(settings)
        self._miss_states = {name: MissState() for name in self._miss_rules}
        self._lock = threading.Lock()
        self._guardrail_state = guardrail_state
        self._raise_state = RaiseState()
        self._journal = journal

    def use_guardrail_state(self, provider: Callable[[], GuardrailState]) -> None:
        """Read the budgets' usage and the cooldown clocks from the planning cycle's state."""
        self._guardrail_state = provider

    def lift(self, floor: FloorDecision, now: pd.Timestamp) -> FloorDecision:
        """Raise a planned floor to the reactive floor held at ``now`` (for ``LiveCycle``)."""
        return lift_floor(floor, self._raised, now)

    @property
    def signals(self) -> list[Signal]:
        return list(self._signals)

    @property
    def actuator(self) -> CombinedActuator:
        """The actuator the planning cycle must apply through, so reactive floors are kept."""
        return self._actuator

    def run_once(self, now: pd.Timestamp) -> FastCycleOutcome:
        """Run one fast cycle at ``now``.

        A ``PeakcastError`` from a signal or from reading the current floors is reported in the
        outcome and logged, not raised.
        """
        with self._lock:
            observations = [self._observe(signal, now) for signal in self._signals]
            levels, misses = self._track_misses(observations, now)
            outcome = self._act(observations, levels, misses, now)
        self._observer.fast_cycle(outcome)
        if outcome.combined:
            self._observer.combined_floors(outcome.combined)
        return outcome

    # --- reading -------------------------------------------------------------------------------

    def _observe(self, signal: Signal, now: pd.Timestamp) -> _Observation:
        key = signal.key
        try:
            reading = signal.read(now)
        except PeakcastError as error:
            self._buffer.reset(key)
            self._report_unreadable(key, str(error))
            return _Observation(signal, None, NO_RUN, str(error))
        if key in self._unreadable:
            self._unreadable.discard(key)
            logger.info("%s: the signal is readable again", key.label, extra=_identity(key))
        return _Observation(signal, reading, self._buffer.add(key, reading.samples))

    def _report_unreadable(self, key: SignalKey, error: str) -> None:
        # The first failure in a row is a warning, repeats are debug lines, so an outage of a
        # source does not flood the log every few seconds.
        level = logging.DEBUG if key in self._unreadable else logging.WARNING
        self._unreadable.add(key)
        logger.log(
            level,
            "%s: the signal could not be read, so it raises nothing: %s",
            key.label,
            error,
            extra=_identity(key),
        )

    # --- forecast misses ----------------------------------------------------------------------

    def _track_misses(
        self, observations: Sequence[_Observation], now: pd.Timestamp
    ) -> tuple[dict[str, float], tuple[str, ...]]:
        readings = {
            o.signal.key.target: o.reading
            for o in observations
            if o.signal.key.signal == DEMAND_ABOVE_FORECAST
        }
        levels: dict[str, float] = {}
        missed: list[str] = []
        for name, rule in self._miss_rules.items():
            reading = readings.get(name)
            observed = reading.value if reading is not None else None
            upper = reading.threshold if reading is not None else None
            result = step(self._miss_states[name], rule, now, observed, upper)
            self._miss_states[name] = result.state
            levels[name] = result.level
            if result.missed:
                missed.append(name)
                self._report_miss(name, result.state.misses, result.level, rule, observed, upper)
            elif result.level_changed:
                logger.info(
                    "workload %s: demand stayed within the forecast for %d s; planning level "
                    "narrowed to P%g",
                    name,
                    rule.recovery_seconds,
                    result.level * 100,
                    extra={"workload": name},
                )
        return levels, tuple(missed)

    def _report_miss(
        self,
        name: str,
        misses: int,
        level: float,
        rule: MissRule,
        observed: float | None,
        upper: float | None,
    ) -> None:
        logger.warning(
            "workload %s: forecast miss %d: live demand %.4g stayed above the upper quantile "
            "%.4g for %d s; planning at P%g%s",
            name,
            misses,
            observed,
            upper,
            rule.miss_after_seconds,
            level * 100,
            " and requesting an early refit" if rule.refit else "",
            extra={"workload": name},
        )
        if rule.refit and self._on_refit is not None:
            self._on_refit(name)

    # --- acting -------------------------------------------------------------------------------

    def _act(
        self,
        observations: Sequence[_Observation],
        levels: Mapping[str, float],
        misses: tuple[str, ...],
        now: pd.Timestamp,
    ) -> FastCycleOutcome:
        widened = {n: lv for n, lv in levels.items() if lv > self._settings.forecast.planning_level}
        with self._actuator.lock:
            try:
                current = self._actuator.current_floors()
            except PeakcastError as error:
                logger.warning(
                    "Fast cycle at %s raised nothing: the current floors could not be read: %s",
                    now.isoformat(),
                    error,
                )
                reports = tuple(self._report(o, None, None) for o in observations)
                return FastCycleOutcome(
                    now, reports, levels=levels, misses=misses, error=str(error)
                )
            reports, candidates = self._candidates(observations, current, now)
            candidates += self._widened_candidates(widened, current, now)
            raised = self._raise(candidates, current, now)
            results: list[ApplyResult] = []
            if raised:
                decision = CycleDecision(now, *_split(raised))
                results = self._actuator.apply(decision)
        if raised and self._journal is not None:
            self._journal.record(
                decision, results, applied=True, source=FAST_LOOP_SOURCE, with_inputs=False
            )
        combined = self._combined(now)
        return FastCycleOutcome(
            now, reports, tuple(raised), tuple(results), levels, misses, combined
        )

    def _candidates(
        self,
        observations: Sequence[_Observation],
        current: Mapping[tuple[str, str], int | None],
        now: pd.Timestamp,
    ) -> tuple[tuple[SignalReport, ...], list[_Candidate]]:
        reports = []
        candidates = []
        for observation in observations:
            key = observation.signal.key
            floor = current.get((key.kind, key.target))
            candidate = self._candidate(observation, floor, now)
            reports.append(self._report(observation, floor, candidate))
            if candidate is not None:
                candidates.append(candidate)
        return tuple(reports), candidates

    def _candidate(
        self, observation: _Observation, current: int | None, now: pd.Timestamp
    ) -> _Candidate | None:
        signal, reading, run = observation.signal, observation.reading, observation.run
        if reading is None or current is None or not run.holds(signal.hysteresis):
            return None
        key = signal.key
        last = self._last_raise.get(key)
        cooling = (
            last is not None
            and signal.cooldown_seconds > 0
            and (now - last.at).total_seconds() < signal.cooldown_seconds
        )
        if cooling and last is not None:
            # A relative floor rule would compound while new replicas start, so the floor of
            # the last raise is held (and kept recorded) until the cooldown ends.
            value = last.value
        else:
            value = self._clamp(key.kind, key.target, reading.floor_for(current))
        reason = (
            f"live signal {key.label}: {reading.value:.4g} {reading.unit} over the threshold "
            f"{reading.threshold:.4g} for {run.seconds:.0f} s ({run.samples} samples)"
        )
        if reading.detail:
            reason += f"; {reading.detail}"
        return _Candidate((key.kind, key.target), value, key.label, reason, key, cooling)

    def _report(
        self, observation: _Observation, current: int | None, candidate: _Candidate | None
    ) -> SignalReport:
        signal, reading, run = observation.signal, observation.reading, observation.run
        if reading is None:
            error = observation.error or "not read"
            return SignalReport(signal.key, "unreadable", message=error)
        status: SignalStatus
        if candidate is not None and candidate.cooling:
            status = "cooldown"
        elif candidate is not None:
            status = "raised" if current is not None and candidate.value > current else "at_floor"
        elif run.holds(signal.hysteresis):
            status = "floor_unknown"
        else:
            status = "holding" if reading.over else "below"
        return SignalReport(
            key=signal.key,
            status=status,
            value=reading.value,
            threshold=reading.threshold,
            unit=reading.unit,
            run_seconds=run.seconds,
            run_samples=run.samples,
            floor=candidate.value if candidate else None,
            message=reading.detail,
        )

    def _widened_candidates(
        self,
        widened: Mapping[str, float],
        current: Mapping[tuple[str, str], int | None],
        now: pd.Timestamp,
    ) -> list[_Candidate]:
        if not widened:
            return []
        forecasts = {}
        for workload in self._settings.workloads:
            forecast = self._forecasts(workload.name)
            if forecast is not None:
                forecasts[workload.name] = forecast
        floors, problem = widened_floors(self._settings, self._fleet, forecasts, widened, now)
        if problem is not None:
            logger.warning(
                "Fast cycle at %s: widened planning levels (%s) raise nothing: %s",
                now.isoformat(),
                ", ".join(f"{n} P{lv * 100:g}" for n, lv in sorted(widened.items())),
                problem,
            )
        candidates = []
        for floor in floors:
            if current.get((floor.kind, floor.name)) is None:
                continue
            value = self._clamp(floor.kind, floor.name, floor.value)
            key = (floor.kind, floor.name)
            candidates.append(_Candidate(key, value, FORECAST_MISS, floor.reason))
        return candidates

    def _raise(
        self,
        candidates: Sequence[_Candidate],
        current: Mapping[tuple[str, str], int | None],
        now: pd.Timestamp,
    ) -> list[FloorDecision]:
        """Guard and record every candidate, and return the floors that still rise."""
        best: dict[FloorId, _Candidate] = {}
        for candidate in candidates:
            found = best.get(candidate.floor)
            if found is None or candidate.value > found.value:
                best[candidate.floor] = candidate
        requested = []
        for (kind, name), candidate in best.items():
            floor = current.get((kind, name))
            if floor is not None and candidate.value > floor:
                requested.append(
                    FloorDecision(
                        kind, name, candidate.value, floor, RULE_REACTIVE, candidate.reason
                    )
                )
        guarded = guard_raises(
            now, requested, current, self._guardrail_state(), self._raise_state, self._settings
        )
        self._raise_state = guarded.state
        for candidate in candidates:
            value = min(candidate.value, guarded.allowed.get(candidate.floor, candidate.value))
            record = RaisedFloor(now, value, candidate.source, candidate.reason)
            self._raised.record(candidate.floor, record)
        for decision in guarded.raises:
            self._note_raise(best[(decision.kind, decision.name)], now)
            logger.info(
                "%s %s: floor raised from %s to %d %s at once by %s",
                decision.kind,
                decision.name,
                decision.current,
                decision.desired,
                decision.unit,
                decision.reason,
                extra={decision.kind: decision.name},
            )
        return list(guarded.raises)

    def _note_raise(self, candidate: _Candidate, now: pd.Timestamp) -> None:
        if candidate.key is not None and not candidate.cooling:
            self._last_raise[candidate.key] = RaisedFloor(
                now, candidate.value, candidate.source, ""
            )

    def _clamp(self, kind: FloorKind, name: str, value: int) -> int:
        if kind == "pool":
            pool = self._settings.pool(name)
            return min(max(value, pool.min_nodes), pool.max_nodes)
        capacity = self._settings.workload(name).capacity
        return min(max(value, capacity.min_replicas), capacity.max_replicas)

    def _combined(self, now: pd.Timestamp) -> dict[str, int]:
        combined = {}
        for workload in self._settings.workloads:
            value = self._raised.combined(("workload", workload.name), now)
            if value is not None:
                combined[workload.name] = value
        return combined


def _miss_rules(settings: Settings) -> dict[str, MissRule]:
    rules = {}
    forecast = settings.forecast
    for workload in settings.workloads:
        signals = workload.signals
        if signals is None or signals.demand_above_forecast is None:
            continue
        misses = signals.demand_above_forecast.misses
        rules[workload.name] = MissRule.from_settings(
            misses, forecast.planning_level, forecast.levels
        )
    return rules


def _split(
    floors: Sequence[FloorDecision],
) -> tuple[tuple[FloorDecision, ...], tuple[FloorDecision, ...]]:
    pools = tuple(floor for floor in floors if floor.kind == "pool")
    workloads = tuple(floor for floor in floors if floor.kind == "workload")
    return pools, workloads


def _identity(key: SignalKey) -> dict[str, str]:
    return {key.kind: key.target, "signal": key.signal}

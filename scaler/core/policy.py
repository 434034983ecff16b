"""The scaling policy: turn the requirement schedule into node and replica floors.

``decide`` is a pure function of its arguments. Time comes in as ``now``, and what the policy
must remember between cycles comes in and goes out as a ``PolicyState``.

Rules, in the order they apply to one floor:

1. A static pool keeps its fixed size (``max_nodes``).
2. Missing data: while a workload's data is unusable (see ``assess_data``) or no forecast
   covers now, its floor and the floors of its pools are held at their current value. Once
   this has lasted ``policy.missing_data_hold_seconds``, a pool rises to its
   ``safe_min_nodes`` when that is above the current floor. Missing data never lowers a floor
   (only a configured maximum can, through rule 4).
3. Otherwise the requirement is the maximum over the lead window, clamped to the bounds, and
   recorded. Scale-up is immediate. Scale-down goes no lower than the highest recommendation
   recorded within ``policy.stabilization_window_seconds`` (as the HPA's scale-down
   stabilisation does), and drops by at most ``max_scale_down_*_per_cycle`` per cycle.
4. The result is clamped to the bounds: ``[min_nodes, max_nodes]`` or
   ``[min_replicas, max_replicas]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from forecaster.history import History
from forecaster.timegrid import format_span
from scaler.core.decision import (
    RULE_BOUNDS,
    RULE_FORECAST,
    RULE_MAX_STEP,
    RULE_MISSING_DATA_HOLD,
    RULE_SAFE_FLOOR,
    RULE_STABILIZATION,
    RULE_STATIC,
    CycleDecision,
    DataStatus,
    FloorDecision,
    FloorKind,
)
from scaler.core.guardrails import GuardrailState, OperatorControls, apply_guardrails
from scaler.core.requirements import (
    Requirements,
    WindowPeak,
    pool_lead_seconds,
    workload_lead_seconds,
)
from scaler.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Floors:
    """Floors held now: nodes per pool and replicas per workload. An absent name is unknown."""

    pools: Mapping[str, int] = field(default_factory=dict)
    workloads: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_decision(cls, decision: CycleDecision) -> Floors:
        """Return the floors a decision sets."""
        return cls(
            pools={floor.name: floor.desired for floor in decision.pools},
            workloads={floor.name: floor.desired for floor in decision.workloads},
        )


@dataclass(frozen=True)
class Recommendation:
    """One recorded recommendation: the bounded lead-window requirement at ``at``."""

    at: pd.Timestamp
    value: int


@dataclass(frozen=True)
class PolicyState:
    """Memory of the policy between cycles.

    ``recommendations`` is keyed by ``"pool/<name>"`` or ``"workload/<name>"`` and contains the
    recommendations of the stabilisation window, oldest first. ``missing_since`` maps each
    workload whose floors are held (unusable data, or no forecast covering now) to the time
    the hold began.
    """

    recommendations: Mapping[str, tuple[Recommendation, ...]] = field(default_factory=dict)
    missing_since: Mapping[str, pd.Timestamp] = field(default_factory=dict)
    guardrails: GuardrailState = field(default_factory=GuardrailState)


@dataclass(frozen=True)
class PolicyResult:
    """The decision of one cycle and the state to pass to the next cycle."""

    decision: CycleDecision
    state: PolicyState


@dataclass(frozen=True)
class _Bounds:
    lower: int
    upper: int
    max_step_down: int

    def clamp(self, value: int) -> int:
        return min(max(value, self.lower), self.upper)


def assess_data(
    workload: str,
    *,
    coverage: float,
    last_observed: pd.Timestamp | None,
    step: pd.Timedelta,
    now: pd.Timestamp,
    settings: Settings,
    recent_coverage: float | None = None,
) -> DataStatus:
    """Judge whether one workload's history can be trusted at ``now``.

    ``coverage`` is the share of observed grid points over the history window, and
    ``recent_coverage`` the share over the last ``coverage_window`` (unset: ``coverage``).
    Data is unusable in three cases:

    - it is stale: the newest sample's step ended more than
      ``max(policy.stale_data_seconds, step)`` before ``now``. The limit is never below one
      step, because a sample arrives only once its step has ended;
    - ``coverage`` is below ``forecast.min_history_coverage``: too little history to fit on;
    - ``recent_coverage`` is below ``forecast.min_coverage``. So an older gap stops holding
      capacity once fresh data covers the coverage window, while the model fills the gap from
      earlier seasons.
    """
    forecast = settings.forecast
    if last_observed is None:
        return DataStatus(workload, coverage, None, False, "no sample in the history window")
    limit = max(pd.Timedelta(seconds=settings.policy.stale_data_seconds), step)
    age = now - (last_observed + step)
    if age > limit:
        reason = (
            f"newest sample is from {last_observed.isoformat()}; its step ended "
            f"{format_span(age)} ago, beyond the {format_span(limit)} staleness limit"
        )
        return DataStatus(workload, coverage, last_observed, False, reason)
    if coverage < forecast.min_history_coverage:
        reason = (
            f"history coverage {coverage:.1%} is below forecast.min_history_coverage "
            f"{forecast.min_history_coverage:.1%}"
        )
        return DataStatus(workload, coverage, last_observed, False, reason)
    recent = coverage if recent_coverage is None else recent_coverage
    if recent < forecast.min_coverage:
        span = format_span(coverage_window(settings))
        reason = (
            f"coverage {recent:.1%} over the last {span} is below forecast.min_coverage "
            f"{forecast.min_coverage:.1%}"
        )
        return DataStatus(workload, coverage, last_observed, False, reason)
    return DataStatus(workload, coverage, last_observed, True)


def coverage_window(settings: Settings) -> pd.Timedelta:
    """Return the span before now over which coverage is measured (see ``assess_data``)."""
    forecast = settings.forecast
    return pd.Timedelta(seconds=min(forecast.coverage_window_seconds, forecast.history_seconds))


def assess_history(history: History, now: pd.Timestamp, settings: Settings) -> DataStatus:
    """Judge ``history`` (already cut at ``now``) over the last ``forecast.history_seconds``."""
    window_start = now - pd.Timedelta(seconds=settings.forecast.history_seconds)
    in_window = history.values.loc[window_start:now]
    coverage = float(in_window.notna().mean()) if len(in_window) else 0.0
    recent = in_window.loc[now - coverage_window(settings) :]
    recent_coverage = float(recent.notna().mean()) if len(recent) else 0.0
    observed = pd.DatetimeIndex(in_window.index[in_window.notna().to_numpy()])
    last_observed = observed[-1] if len(observed) else None
    return assess_data(
        history.name,
        coverage=coverage,
        last_observed=last_observed,
        step=history.step,
        now=now,
        settings=settings,
        recent_coverage=recent_coverage,
    )


def decide(
    now: pd.Timestamp,
    requirements: Requirements | None,
    current: Floors,
    state: PolicyState,
    data: Sequence[DataStatus],
    settings: Settings,
    *,
    log_level: int = logging.INFO,
    controls: OperatorControls | None = None,
    lift: Callable[[FloorDecision], FloorDecision] | None = None,
) -> PolicyResult:
    """Decide the node floor of every pool and the replica floor of every workload at ``now``.

    ``requirements`` is None when no forecast is available, and every floor then holds. A workload
    without a ``DataStatus`` in ``data`` counts as having unusable data. Each floor decision is
    logged once at ``log_level`` (INFO in real cycles, DEBUG in backtests).

    ``lift``, when given, may raise each floor before the guardrails, for example to the
    floor a live signal holds (``scaler.signals.raised.lift_floor``). The guardrails
    (``scaler.core.guardrails``: overrides, step limits, cooldowns, budgets and pauses from
    ``settings.guardrails`` and ``controls``) apply last, to the lifted floors.
    """
    missing = _missing_reasons(now, requirements, data, settings)
    missing_since = {name: state.missing_since.get(name, now) for name in missing}
    recommendations = dict(state.recommendations)
    context = _Context(now, requirements, settings, missing, missing_since, recommendations)

    pools = tuple(
        context.pool_floor(pool.name, current.pools.get(pool.name)) for pool in settings.pools
    )
    workloads = tuple(
        context.workload_floor(workload.name, current.workloads.get(workload.name))
        for workload in settings.workloads
    )
    if lift is not None:
        pools = tuple(lift(floor) for floor in pools)
        workloads = tuple(lift(floor) for floor in workloads)
    guarded = apply_guardrails(
        now, pools, workloads, state.guardrails, settings, controls, log_level=log_level
    )
    pools, workloads = guarded.pools, guarded.workloads
    decision = CycleDecision(at=now, pools=pools, workloads=workloads, data=tuple(data))
    for floor in decision.all_floors():
        logger.log(
            log_level,
            "%s %s: floor %s -> %d %s (rule %s): %s",
            floor.kind,
            floor.name,
            "unknown" if floor.current is None else floor.current,
            floor.desired,
            floor.unit,
            floor.rule,
            floor.reason,
        )
    new_state = PolicyState(
        recommendations=recommendations, missing_since=missing_since, guardrails=guarded.state
    )
    return PolicyResult(decision=decision, state=new_state)


def _missing_reasons(
    now: pd.Timestamp,
    requirements: Requirements | None,
    data: Sequence[DataStatus],
    settings: Settings,
) -> dict[str, str]:
    """Return, per workload whose floors must hold, the reason in one sentence."""
    by_name = {status.workload: status for status in data}
    reasons: dict[str, str] = {}
    for workload in settings.workloads:
        status = by_name.get(workload.name)
        if status is None:
            reasons[workload.name] = "no data status was reported for this workload"
        elif not status.usable:
            reasons[workload.name] = status.reason or "its data is not usable"
        elif requirements is None:
            reasons[workload.name] = "no forecast is available"
        elif not requirements.covers(now):
            reasons[workload.name] = f"the newest forecast ends at {requirements.end.isoformat()}"
    return reasons


class _Context:
    """The inputs one ``decide`` call shares between its floors."""

    def __init__(
        self,
        now: pd.Timestamp,
        requirements: Requirements | None,
        settings: Settings,
        missing: Mapping[str, str],
        missing_since: Mapping[str, pd.Timestamp],
        recommendations: dict[str, tuple[Recommendation, ...]],
    ) -> None:
        self.now = now
        self.requirements = requirements
        self.settings = settings
        self.missing = missing
        self.missing_since = missing_since
        self.recommendations = recommendations

    def pool_floor(self, name: str, current: int | None) -> FloorDecision:
        pool = self.settings.pool(name)
        if pool.kind == "static":
            reason = f"static pool: its size is fixed at max_nodes = {pool.max_nodes}"
            return FloorDecision("pool", name, pool.max_nodes, current, RULE_STATIC, reason)

        bounds = _Bounds(
            pool.min_nodes, pool.max_nodes, self.settings.policy.max_scale_down_nodes_per_cycle
        )
        workloads = [w.name for w in self.settings.workloads if name in w.pools]
        missing = [w for w in workloads if w in self.missing]
        if missing:
            since = min(self.missing_since[w] for w in missing)
            reason = "; ".join(f"workload {w}: {self.missing[w]}" for w in missing)
            return self._hold(
                "pool", name, current, bounds, since, reason, safe_floor=pool.safe_min_nodes
            )

        requirements = self._requirements()
        lead = pool_lead_seconds(self.settings, name)
        peak = requirements.window_peak(requirements.nodes[name], self.now, lead)
        if peak is None:  # _missing_reasons turns this case into a hold
            raise ValueError(f"pool {name!r}: the requirement schedule ends before {self.now}")
        value = None
        if len(workloads) == 1:
            value = float(requirements.demand[workloads[0]][peak.row])
        needed = (
            f"{peak.value} {'node is' if peak.value == 1 else 'nodes are'} needed for "
            f"workload(s) {', '.join(workloads)} within the "
            f"next {lead} s (node provisioning, workload start and margin)"
        )
        return self._forecast_floor("pool", name, current, bounds, peak, needed, value)

    def workload_floor(self, name: str, current: int | None) -> FloorDecision:
        workload = self.settings.workload(name)
        capacity = workload.capacity
        bounds = _Bounds(
            capacity.min_replicas,
            capacity.max_replicas,
            self.settings.policy.max_scale_down_replicas_per_cycle,
        )
        if name in self.missing:
            since = self.missing_since[name]
            return self._hold("workload", name, current, bounds, since, self.missing[name])

        requirements = self._requirements()
        lead = workload_lead_seconds(self.settings, name)
        peak = requirements.window_peak(requirements.replicas[name], self.now, lead)
        if peak is None:  # _missing_reasons turns this case into a hold
            raise ValueError(f"workload {name!r}: the requirement schedule ends before {self.now}")
        value = float(requirements.demand[name][peak.row])
        demand_replicas = (
            int(requirements.demand_replicas[name][peak.row])
            if requirements.demand_replicas is not None
            else peak.value
        )
        needed = (
            f"the P{requirements.level * 100:g} forecast of {value:.4g} {workload.demand.unit} at "
            f"{requirements.time_of(peak.row).isoformat()} needs {demand_replicas} "
            f"{'replica' if demand_replicas == 1 else 'replicas'} within "
            f"the next {lead} s (workload start)"
        )
        if peak.value > demand_replicas:
            needed += (
                f", raised to {peak.value} to use the free slots of nodes its pools hold anyway"
            )
        unplaced = int(requirements.unplaced[name][peak.row])
        if unplaced:
            needed += f"; {unplaced} of them do not fit under the pools' max_nodes"
        return self._forecast_floor("workload", name, current, bounds, peak, needed, value)

    def _requirements(self) -> Requirements:
        if self.requirements is None:  # _missing_reasons turns this case into a hold
            raise ValueError("no requirement schedule, so no floor can follow the forecast")
        return self.requirements

    def _forecast_floor(
        self,
        kind: FloorKind,
        name: str,
        current: int | None,
        bounds: _Bounds,
        peak: WindowPeak,
        needed: str,
        forecast_value: float | None,
    ) -> FloorDecision:
        recommended = bounds.clamp(peak.value)
        stabilized = self._record(f"{kind}/{name}", recommended)
        if current is None or stabilized >= current:
            desired = stabilized
        else:
            desired = max(stabilized, current - bounds.max_step_down)
        final = bounds.clamp(desired)

        unit = "nodes" if kind == "pool" else "replicas"
        window = self.settings.policy.stabilization_window_seconds
        if final != desired:
            rule = RULE_BOUNDS
            reason = f"{needed}; clamped to the bounds [{bounds.lower}, {bounds.upper}]"
        elif current is not None and stabilized < desired:
            rule = RULE_MAX_STEP
            reason = (
                f"{needed}; scale-down is limited to {bounds.max_step_down} "
                f"{unit[:-1] if bounds.max_step_down == 1 else unit} per cycle "
                f"(stabilized target {stabilized})"
            )
        elif stabilized > recommended:
            rule = RULE_STABILIZATION
            reason = (
                f"{needed}; held at {stabilized}, the highest recommendation in the last "
                f"{window} s stabilization window"
            )
        elif recommended != peak.value:
            rule = RULE_BOUNDS
            reason = f"{needed}; clamped to the bounds [{bounds.lower}, {bounds.upper}]"
        else:
            rule = RULE_FORECAST
            reason = needed
        return FloorDecision(
            kind=kind,
            name=name,
            desired=final,
            current=current,
            rule=rule,
            reason=reason,
            forecast_level=self._requirements().level,
            forecast_value=forecast_value,
            window_start=peak.start,
            window_end=peak.end,
        )

    def _record(self, key: str, value: int) -> int:
        """Record ``value`` at now, drop entries older than the window, return the window max.

        Entries are kept oldest first, so expired ones are dropped from the front. An entry
        already recorded at now (a cycle run twice) is replaced.
        """
        window = pd.Timedelta(seconds=self.settings.policy.stabilization_window_seconds)
        oldest_kept = self.now - window
        entries = self.recommendations.get(key, ())
        first = 0
        while first < len(entries) and entries[first].at <= oldest_kept:
            first += 1
        last = len(entries)
        while last > first and entries[last - 1].at >= self.now:
            last -= 1
        in_window = (*entries[first:last], Recommendation(self.now, value))
        self.recommendations[key] = in_window
        return max(entry.value for entry in in_window)

    def _hold(
        self,
        kind: FloorKind,
        name: str,
        current: int | None,
        bounds: _Bounds,
        since: pd.Timestamp,
        cause: str,
        *,
        safe_floor: int | None = None,
    ) -> FloorDecision:
        hold_seconds = self.settings.policy.missing_data_hold_seconds
        held_for = (self.now - since).total_seconds()
        expired = held_for >= hold_seconds
        unit = "nodes" if kind == "pool" else "replicas"

        if current is None:
            desired = safe_floor if safe_floor is not None else bounds.lower
            rule = RULE_SAFE_FLOOR if safe_floor is not None else RULE_MISSING_DATA_HOLD
            reason = (
                f"data is missing ({cause}) and the current floor is unknown; set {desired} "
                f"{unit[:-1] if desired == 1 else unit}"
            )
        elif expired and safe_floor is not None and safe_floor > current:
            desired, rule = safe_floor, RULE_SAFE_FLOOR
            reason = (
                f"data has been missing for {held_for:.0f} s ({cause}); raised to the safe floor "
                f"of {safe_floor} {unit[:-1] if safe_floor == 1 else unit}"
            )
        else:
            desired, rule = current, RULE_MISSING_DATA_HOLD
            reason = (
                f"data is missing since {since.isoformat()} ({cause}); holding {current} "
                f"{unit[:-1] if current == 1 else unit}"
            )
            if expired and safe_floor is not None:
                reason += (
                    f"; the safe floor of {safe_floor} is not above it, and missing data never "
                    "lowers a floor"
                )

        final = bounds.clamp(desired)
        if final != desired:
            rule = RULE_BOUNDS
            reason += f"; clamped to the bounds [{bounds.lower}, {bounds.upper}]"
        return FloorDecision(kind, name, final, current, rule, reason)

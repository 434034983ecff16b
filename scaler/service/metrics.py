"""The Prometheus metrics of ``peakcast run``; docs/METRICS.md lists every series.

Each service owns its registry, so two services in one process (tests) do not share series.
Timestamps are the cycle's clock in Unix seconds, which is the wall clock in production.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Protocol

import pandas as pd
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

from forecaster.forecast import Forecast
from scaler.core.capacity import replicas_for_value
from scaler.core.policy import Floors
from scaler.core.requirements import pool_lead_seconds
from scaler.cycle import CycleObserver, CycleOutcome
from scaler.service.forecasts import WorkloadView
from scaler.settings import Settings
from scaler.signals.outcome import FastCycleOutcome, FastLoopObserver

logger = logging.getLogger(__name__)

# Every error kind the service counts. Each starts at 0, so rate() covers its first increase.
ERROR_KINDS = (
    "data_missing",
    "data_partial",
    "history_too_short",
    "data_invalid",
    "source_unavailable",
    "config",
    "forecast_failed",
    "timeout",
    "internal",
    "floors_unreadable",
    "apply_failed",
    "apply_conflict",
    "job_failed",
    "job_missed",
    "job_skipped",
)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
LEAD_TIME_LEVELS = {"p50": 0.5, "p95": 0.95}


class LeadTimeStatistic(Protocol):
    """Measured samples of one lead-time phase (``scaler.kube.leadtime.LeadTimeStats``)."""

    @property
    def count(self) -> int: ...

    def quantile(self, level: float) -> float | None: ...


def timestamp_seconds(at: pd.Timestamp) -> float:
    """Return ``at`` as Unix seconds."""
    return at.value / 1e9


class ServiceMetrics(CycleObserver, FastLoopObserver):
    """Every peakcast series, updated by the cycle (as its observer), the jobs and the leader."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or _new_registry()
        self._horizons = settings.service.metric_horizons_seconds
        self._define_forecast_series()
        self._define_floor_series()
        self._define_service_series()
        self._define_signal_series()
        self._set_configured_lead_times()

    # --- definitions ---------------------------------------------------------------------------

    def _define_forecast_series(self) -> None:
        registry = self.registry
        self.forecast_demand = Gauge(
            "peakcast_forecast_demand",
            "Forecast demand quantile, in the workload's demand unit, for the model step starting "
            "horizon_seconds after the first forecast step.",
            ["workload", "quantile", "horizon_seconds"],
            registry=registry,
        )
        self.forecast_point = Gauge(
            "peakcast_forecast_point_demand",
            "Point forecast of demand, in the workload's demand unit, for the model step starting "
            "horizon_seconds after the first forecast step.",
            ["workload", "horizon_seconds"],
            registry=registry,
        )
        self.forecast_replicas = Gauge(
            "peakcast_forecast_replicas",
            "Replicas the planning-level forecast needs within the workload-start lead window.",
            ["workload", "namespace"],
            registry=registry,
        )
        self.forecast_cutoff = Gauge(
            "peakcast_forecast_cutoff_timestamp_seconds",
            "Start of the last complete model step the workload's forecast has seen.",
            ["workload"],
            registry=registry,
        )
        self.observed_demand = Gauge(
            "peakcast_observed_demand",
            "Newest observed demand sample, in the workload's demand unit.",
            ["workload"],
            registry=registry,
        )
        self.data_coverage = Gauge(
            "peakcast_data_coverage_ratio",
            "Share of history grid points holding a sample, 0 to 1.",
            ["workload"],
            registry=registry,
        )
        self.data_age = Gauge(
            "peakcast_data_age_seconds",
            "Age of the newest observed sample at the last refresh.",
            ["workload"],
            registry=registry,
        )
        self.data_usable = Gauge(
            "peakcast_data_usable",
            "1 when the workload's data was usable at the last refresh, 0 when its floors hold.",
            ["workload"],
            registry=registry,
        )
        self.last_refresh = Gauge(
            "peakcast_last_refresh_timestamp_seconds",
            "Time of the last refresh of the workload, failed or not.",
            ["workload"],
            registry=registry,
        )
        self.fit_duration = Histogram(
            "peakcast_fit_duration_seconds",
            "Duration of one full forecaster fit (with model selection for model 'auto').",
            ["workload"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    def _define_floor_series(self) -> None:
        registry = self.registry
        self.planned_floor = Gauge(
            "peakcast_planned_floor",
            "Floor the last cycle decided: nodes for kind 'pool', replicas for kind 'workload'.",
            ["kind", "name"],
            registry=registry,
        )
        self.current_floor = Gauge(
            "peakcast_current_floor",
            "Floor read from the cluster at the start of the last cycle.",
            ["kind", "name"],
            registry=registry,
        )
        self.decisions = Counter(
            "peakcast_floor_decisions",
            "Floor decisions by the rule that set them.",
            ["kind", "name", "rule"],
            registry=registry,
        )
        self.apply_results = Counter(
            "peakcast_apply_results",
            "Floors handed to the actuator, by what happened to them.",
            ["kind", "name", "status"],
            registry=registry,
        )
        self.pool_lead_time = Gauge(
            "peakcast_pool_lead_time_seconds",
            "Look-ahead of the pool's node floor: node provisioning, workload start and margin.",
            ["pool"],
            registry=registry,
        )
        self.node_provisioning = Gauge(
            "peakcast_node_provisioning_seconds",
            "Node provisioning phase of the lead time: configured, or measured p50 and p95.",
            ["pool", "statistic"],
            registry=registry,
        )
        self.workload_start = Gauge(
            "peakcast_workload_start_seconds",
            "Workload start phase of the lead time: configured, or measured p50 and p95.",
            ["workload", "statistic"],
            registry=registry,
        )

    def _define_service_series(self) -> None:
        registry = self.registry
        self.last_success = Gauge(
            "peakcast_last_successful_cycle_timestamp_seconds",
            "Time of the last planning cycle whose decision reached the actuator.",
            registry=registry,
        )
        self.errors = Counter(
            "peakcast_errors",
            "Errors that made a workload or a cycle hold, by kind.",
            ["kind"],
            registry=registry,
        )
        for kind in ERROR_KINDS:
            self.errors.labels(kind)
        self.job_duration = Histogram(
            "peakcast_cycle_duration_seconds",
            "Duration of one run of a scheduled job: refresh, plan or refit.",
            ["job"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.leader = Gauge(
            "peakcast_leader",
            "1 while this replica holds the lease and may act, else 0.",
            registry=registry,
        )

    def _define_signal_series(self) -> None:
        registry = self.registry
        self.combined_floor = Gauge(
            "peakcast_combined_floor_replicas",
            "Replica floor max(predictive, reactive): the forecast policy's floor, or a live "
            "signal's floor held for the stabilization window, whichever is higher. An HPA or "
            "KEDA ScaledObject can scale on it.",
            ["workload"],
            registry=registry,
        )
        self.forecast_misses = Counter(
            "peakcast_forecast_misses",
            "Forecast misses: live demand stayed above the forecast's upper quantile for "
            "signals.demand_above_forecast.misses.miss_after_seconds.",
            ["workload"],
            registry=registry,
        )
        self.planning_level = Gauge(
            "peakcast_planning_level",
            "Quantile level the workload is planned at; above forecast.planning_level after "
            "a forecast miss, until demand stays within the forecast again.",
            ["workload"],
            registry=registry,
        )
        self.signal_value = Gauge(
            "peakcast_signal_value",
            "Newest value of a live signal, in the signal's unit; absent while unreadable.",
            ["kind", "name", "signal"],
            registry=registry,
        )
        self.signal_unreadable = Counter(
            "peakcast_signal_unreadable",
            "Fast cycles in which a live signal could not be read, so it raised nothing.",
            ["kind", "name", "signal"],
            registry=registry,
        )
        self.reactive_raises = Counter(
            "peakcast_reactive_raises",
            "Floors the fast loop raised above the current floor.",
            ["kind", "name"],
            registry=registry,
        )
        for workload in self.settings.workloads:
            signals = workload.signals
            if signals is not None and signals.demand_above_forecast is not None:
                self.forecast_misses.labels(workload.name)

    def _set_configured_lead_times(self) -> None:
        for pool in self.settings.pools:
            self.pool_lead_time.labels(pool.name).set(pool_lead_seconds(self.settings, pool.name))
            self.node_provisioning.labels(pool.name, "configured").set(
                pool.node_provisioning_seconds
            )
        for workload in self.settings.workloads:
            self.workload_start.labels(workload.name, "configured").set(
                workload.workload_start_seconds
            )

    # --- CycleObserver ---------------------------------------------------------------------------

    def refreshed(self, view: WorkloadView, now: pd.Timestamp) -> None:
        name = view.workload
        status = view.status
        self.last_refresh.labels(name).set(timestamp_seconds(view.refreshed_at))
        self.data_usable.labels(name).set(1 if status.usable else 0)
        self.data_coverage.labels(name).set(status.coverage)
        if status.last_observed is not None:
            self.data_age.labels(name).set((now - status.last_observed).total_seconds())
        if view.observed is not None:
            self.observed_demand.labels(name).set(view.observed)
        if view.forecast is not None:
            self._set_forecast(name, view.forecast, now)

    def fitted(self, workload: str, model: str, seconds: float) -> None:
        self.fit_duration.labels(workload).observe(seconds)

    def planned(self, outcome: CycleOutcome, current: Floors) -> None:
        for floor in outcome.decision.all_floors():
            self.planned_floor.labels(floor.kind, floor.name).set(floor.desired)
            self.decisions.labels(floor.kind, floor.name, floor.rule).inc()
        for kind, floors in (("pool", current.pools), ("workload", current.workloads)):
            for name, value in floors.items():
                self.current_floor.labels(kind, name).set(value)
        for result in outcome.results:
            self.apply_results.labels(result.floor.kind, result.floor.name, result.status).inc()
        if outcome.applied:
            self.last_success.set(timestamp_seconds(outcome.decision.at))

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    # --- FastLoopObserver ------------------------------------------------------------------------

    def fast_cycle(self, outcome: FastCycleOutcome) -> None:
        for report in outcome.reports:
            key = report.key
            signal = f"{key.signal}[{key.index}]" if key.index else key.signal
            labels = (key.kind, key.target, signal)
            if report.value is None or not math.isfinite(report.value):
                _remove(self.signal_value, labels)
            else:
                self.signal_value.labels(*labels).set(report.value)
            if report.status == "unreadable":
                self.signal_unreadable.labels(*labels).inc()
        for floor in outcome.raised:
            self.reactive_raises.labels(floor.kind, floor.name).inc()
        for workload in outcome.misses:
            self.forecast_misses.labels(workload).inc()
        for workload, level in outcome.levels.items():
            self.planning_level.labels(workload).set(level)

    def combined_floors(self, floors: Mapping[str, int]) -> None:
        for workload, value in floors.items():
            self.combined_floor.labels(workload).set(value)

    # --- service -------------------------------------------------------------------------------

    def set_leader(self, leader: bool) -> None:
        """Set the leader gauge; a replica that stops leading drops its floor series."""
        self.leader.set(1 if leader else 0)
        if not leader:
            self.planned_floor.clear()
            self.current_floor.clear()
            self.combined_floor.clear()

    def set_lead_times(self, measured: Mapping[tuple[str, str], LeadTimeStatistic]) -> None:
        """Export measured lead-time quantiles of pools and workloads (kind, name) -> samples."""
        for (kind, name), stats in measured.items():
            if stats.count == 0:
                continue
            gauge = self.node_provisioning if kind == "pool" else self.workload_start
            for label, level in LEAD_TIME_LEVELS.items():
                value = stats.quantile(level)
                if value is not None:
                    gauge.labels(name, label).set(value)

    def _set_forecast(self, name: str, forecast: Forecast, now: pd.Timestamp) -> None:
        # Counted from the first forecast step, so the row does not depend on when in the
        # current step the refresh ran.
        for horizon in self._horizons:
            row = math.floor(pd.Timedelta(seconds=horizon) / forecast.step)
            labels = (name, str(horizon))
            if row >= forecast.h:
                _remove(self.forecast_point, labels)
                for level in forecast.quantiles:
                    _remove(self.forecast_demand, (name, f"{level:g}", str(horizon)))
                continue
            self.forecast_point.labels(*labels).set(float(forecast.point[row]))
            for level, values in forecast.quantiles.items():
                self.forecast_demand.labels(name, f"{level:g}", str(horizon)).set(
                    float(values[row])
                )
        self.forecast_cutoff.labels(name).set(timestamp_seconds(forecast.cutoff))
        self._set_forecast_replicas(name, forecast, now)

    def _set_forecast_replicas(self, name: str, forecast: Forecast, now: pd.Timestamp) -> None:
        workload = self.settings.workload(name)
        level = self.settings.forecast.planning_level
        values = forecast.quantiles[level]
        end = now + pd.Timedelta(seconds=workload.workload_start_seconds)
        # The rows meeting [now, end], as the policy's lead window takes them: a window before
        # the first row (the current step is still being observed) uses the first row.
        first_start = forecast.cutoff + forecast.step
        first = max(0, math.floor((now - first_start) / forecast.step))
        last = min(forecast.h - 1, max(0, math.floor((end - first_start) / forecast.step)))
        if first > last:
            _remove(self.forecast_replicas, (name, workload.namespace))
            return
        peak = float(values[first : last + 1].max())
        replicas = replicas_for_value(peak, workload.capacity)
        self.forecast_replicas.labels(name, workload.namespace).set(replicas)


def _new_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


def _remove(metric: Gauge, labels: tuple[str, ...]) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        return

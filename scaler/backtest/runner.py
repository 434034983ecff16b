"""Run every policy on the same trace through the simulator and collect the metrics.

The warm-up (``backtest.warmup_seconds``) is history only. Each policy is then stepped once per
simulated minute, seeing nothing after that minute (except the oracle), and its targets are
simulated from the same initial state: the fleet sized for the last warm-up minute's demand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError
from forecaster.forecast import Forecast
from forecaster.history import History
from scaler.backtest.forecasting import ForecastEngine, default_engine_factory
from scaler.backtest.metrics import (
    PeakWindow,
    RunMetrics,
    find_peak_windows,
    summarize,
    total_demand_gpus,
)
from scaler.backtest.misses import MissesByWorkload, MissReplay, find_misses
from scaler.backtest.policies import DEFAULT_POLICIES, PolicyContext, policy_class
from scaler.backtest.policies.leads import pool_lead_minutes
from scaler.backtest.policies.peakcast import PeakcastFloors
from scaler.backtest.trace import MINUTE, Trace, TraceView, build_trace
from scaler.core.capacity import Fleet, FloatArray, demand_in_gpus
from scaler.core.provisioning import ProvisioningEvents
from scaler.core.simulator import InitialState, Simulation, initial_state, minutes_for, simulate
from scaler.settings import Settings

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# The progress callback is called after this many simulated minutes of each policy.
_PROGRESS_EVERY_MINUTES = 1440


@dataclass(frozen=True)
class PolicySeries:
    """Per-minute series of one policy's run, kept compact (32-bit) for plots."""

    node_targets: Mapping[str, np.ndarray]
    billed_nodes: Mapping[str, np.ndarray]
    replica_targets: Mapping[str, np.ndarray]
    serving_gpus: Mapping[str, np.ndarray]

    @classmethod
    def from_simulation(cls, simulation: Simulation) -> PolicySeries:
        def compact(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {name: values.astype(np.int32) for name, values in arrays.items()}

        return cls(
            node_targets=compact(simulation.node_targets),
            billed_nodes=compact(simulation.billed_nodes),
            replica_targets=compact(simulation.replica_targets),
            serving_gpus=compact(simulation.serving_gpus),
        )


@dataclass(frozen=True)
class PolicyRun:
    """One policy's metrics and series. ``rule_counts`` counts peakcast's floor rules.

    ``provisioning`` counts GPU-init failures, stockouts and redrawn nodes per burst pool that
    the simulator replayed through random draws (see docs/SIMULATOR.md).
    """

    name: str
    metrics: RunMetrics
    series: PolicySeries
    rule_counts: Mapping[str, int] = field(default_factory=dict)
    provisioning: Mapping[str, ProvisioningEvents] = field(default_factory=dict)


@dataclass(frozen=True)
class BacktestResult:
    """Every policy's run on one trace, plus what plots need.

    ``demand_gpus`` is the per-minute demand in GPUs at the SLO (float32, NaN where missing).
    ``forecasts`` contains peakcast's forecasts, one mapping per replan. ``peak_windows`` are
    the high-demand spans that ``RunMetrics.window_shortfall_gpu_minutes`` follows.
    ``misses`` contains the forecast misses per workload and ``minutes_above_upper`` the
    minutes with demand above the upper quantile (``scaler.backtest.misses``). Both are empty
    mappings when no peakcast policy ran.
    """

    start: pd.Timestamp
    minutes: int
    demand_gpus: Mapping[str, np.ndarray]
    runs: Mapping[str, PolicyRun]
    forecasts: tuple[Mapping[str, Forecast], ...]
    peak_windows: tuple[PeakWindow, ...]
    misses: MissesByWorkload = field(default_factory=dict)
    minutes_above_upper: Mapping[str, int] = field(default_factory=dict)

    @property
    def index(self) -> pd.DatetimeIndex:
        """Return the timestamps of the simulated minutes."""
        return pd.date_range(self.start, periods=self.minutes, freq=MINUTE)

    def summary(self) -> pd.DataFrame:
        """Return one row of totals per policy, in run order."""
        rows = {name: run.metrics.row() for name, run in self.runs.items()}
        return pd.DataFrame.from_dict(rows, orient="index")


def run_backtest(
    settings: Settings,
    histories: dict[str, History],
    policies: list[str] | None = None,
    progress: Progress | None = None,
    *,
    engine: ForecastEngine | None = None,
    log_level: int = logging.DEBUG,
) -> BacktestResult:
    """Replay ``histories`` (one per workload, keyed by name) through every policy.

    ``policies`` defaults to ``DEFAULT_POLICIES``. ``engine`` is the forecast engine the peakcast
    policies use; unset builds ``forecaster.engine.ForecastEngine(settings.forecast)`` when a
    peakcast policy runs. ``progress(done, total)`` counts simulated minutes over all policies.
    Policy decisions are logged at ``log_level``.
    """
    names = list(policies) if policies is not None else list(DEFAULT_POLICIES)
    classes = {name: policy_class(name) for name in names}
    _check_horizon(settings)
    if engine is None and any(name.startswith("peakcast") for name in names):
        engine = default_engine_factory()(settings.forecast)

    fleet = Fleet(settings.pools, settings.workloads)
    trace = build_trace(settings, histories)
    view = TraceView(trace, settings)
    span = slice(trace.sim_start, trace.sim_end)
    demand_gpus = {
        w.name: demand_in_gpus(trace.demand[w.name][span], w.capacity) for w in settings.workloads
    }
    last_warmup = {
        name: float(values[trace.sim_start - 1]) for name, values in trace.demand.items()
    }
    initial = initial_state(settings, fleet, last_warmup)
    windows = find_peak_windows(
        total_demand_gpus(demand_gpus),
        trace.sim_index(),
        settings.backtest.peak_demand_quantile,
        minutes_for(settings.backtest.peak_merge_gap_seconds),
    )
    logger.info(
        "backtest of %s from %s: %d simulated minutes after a %d-minute warm-up, policies %s",
        ", ".join(w.name for w in settings.workloads),
        trace.time_of(trace.sim_start).isoformat(),
        trace.sim_end - trace.sim_start,
        trace.sim_start,
        ", ".join(names),
    )

    shared: dict[str, object] = {}
    runner = _PolicyRunner(settings, fleet, trace, view, engine, initial, log_level, shared)
    total = len(names) * (trace.sim_end - trace.sim_start)
    runs: dict[str, PolicyRun] = {}
    for position, name in enumerate(names):
        offset = position * (trace.sim_end - trace.sim_start)
        tick = None if progress is None else _offset_progress(progress, offset, total)
        runs[name] = runner.run(name, classes[name].sees_future, demand_gpus, windows, tick)

    floors = shared.get("peakcast_floors")
    forecasts: tuple[Mapping[str, Forecast], ...] = ()
    replay = MissReplay({}, {})
    if isinstance(floors, PeakcastFloors):
        forecasts = tuple(floors.planner.forecasts)
        demand = {name: values[span] for name, values in trace.demand.items()}
        replay = find_misses(
            settings,
            trace.time_of(trace.sim_start),
            demand,
            forecasts,
            floors.planner.forecast_times,
        )
    return BacktestResult(
        start=trace.time_of(trace.sim_start),
        minutes=trace.sim_end - trace.sim_start,
        demand_gpus={name: values.astype(np.float32) for name, values in demand_gpus.items()},
        runs=runs,
        forecasts=forecasts,
        peak_windows=windows,
        misses=replay.misses,
        minutes_above_upper=replay.minutes_above,
    )


def _offset_progress(progress: Progress, offset: int, total: int) -> Progress:
    def tick(done: int, _: int) -> None:
        progress(offset + done, total)

    return tick


def _check_horizon(settings: Settings) -> None:
    """Reject a horizon that ends before the last lead window of a replan interval."""
    longest = max(
        (pool_lead_minutes(settings, p.name, margin=True) for p in settings.pools), default=0
    )
    needed = settings.backtest.replan_interval_seconds + 60 * longest
    if settings.forecast.horizon_seconds < needed:
        raise ConfigError(
            "forecast.horizon_seconds",
            settings.forecast.horizon_seconds,
            f"must be at least {needed} s so that the forecast covers the longest lead window "
            "until the next replan (backtest.replan_interval_seconds plus lead time)",
        )


class _PolicyRunner:
    """Runner of one policy: steps it over the simulated minutes, simulates and measures it."""

    def __init__(
        self,
        settings: Settings,
        fleet: Fleet,
        trace: Trace,
        view: TraceView,
        engine: ForecastEngine | None,
        initial: InitialState,
        log_level: int,
        shared: dict[str, object],
    ) -> None:
        self.settings = settings
        self.fleet = fleet
        self.trace = trace
        self.view = view
        self.engine = engine
        self.initial = initial
        self.log_level = log_level
        self.shared = shared

    def run(
        self,
        name: str,
        sees_future: bool,
        demand_gpus: Mapping[str, FloatArray],
        windows: Sequence[PeakWindow],
        progress: Progress | None,
    ) -> PolicyRun:
        started = time.perf_counter()
        node_targets, replica_targets = self._step(name, sees_future, progress)
        simulation = simulate(
            self.settings, self.fleet, node_targets, replica_targets, self.initial
        )
        wall = time.perf_counter() - started
        metrics = summarize(
            simulation, demand_gpus, self.initial.nodes, self.initial.replicas, windows, wall
        )
        floors = self.shared.get("peakcast_floors")
        rules = {}
        if name.startswith("peakcast") and isinstance(floors, PeakcastFloors):
            rules = dict(floors.planner.rule_counts)
        logger.info(
            "policy %s: shortfall %.1f GPU-minutes, %.1f GPU-hours, cost %.2f, %d scale actions, "
            "%.2f s",
            name,
            metrics.shortfall_gpu_minutes,
            metrics.gpu_hours,
            metrics.cost,
            metrics.scale_actions,
            wall,
        )
        series = PolicySeries.from_simulation(simulation)
        return PolicyRun(name, metrics, series, rules, dict(simulation.events))

    def _step(
        self, name: str, sees_future: bool, progress: Progress | None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        trace = self.trace
        context = PolicyContext(
            settings=self.settings,
            fleet=self.fleet,
            warmup=self.view.at(trace.sim_start - 1),
            engine=self.engine,
            log_level=self.log_level,
            future=trace if sees_future else None,
            shared=self.shared,
        )
        policy = policy_class(name)(context)
        minutes = trace.sim_end - trace.sim_start
        burst = [pool.name for pool in self.settings.pools if pool.kind == "burst"]
        workloads = [workload.name for workload in self.settings.workloads]
        nodes = {pool: np.empty(minutes, dtype=np.int64) for pool in burst}
        replicas = {workload: np.empty(minutes, dtype=np.int64) for workload in workloads}
        for k in range(minutes):
            targets = policy.step(self.view.at(trace.sim_start + k))
            for pool in burst:
                nodes[pool][k] = targets.nodes[pool]
            for workload in workloads:
                replicas[workload][k] = targets.replicas[workload]
            if progress is not None and (k + 1) % _PROGRESS_EVERY_MINUTES == 0:
                progress(k + 1, minutes)
        if progress is not None:
            progress(minutes, minutes)
        return nodes, replicas

"""Backtest machinery for bench/tune_policy.py: traces, fleet sizing, forecast reuse, runs.

Every trace becomes the one workload of config/peakcast.yaml. A trace in requests is sized so
that its 99th percentile needs ``P99_REPLICAS`` replicas; a trace already in GPUs gets one GPU
per replica. The static pool has ``STATIC_SHARE`` of the GPUs the 99th percentile needs, and
the burst pool can grow to the trace maximum, so the oracle is never short.

A variant is a set of config overrides. Forecasts depend only on the forecast settings and the
replan interval, so variants that differ in policy settings reuse them (``CachingEngine``), and
the reactive and oracle runs are made once per trace and fleet (``Tuner``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from forecaster.engine import FittedForecaster, ForecastEngine
from forecaster.forecast import Forecast
from forecaster.history import History
from scaler.backtest.metrics import RunMetrics
from scaler.backtest.runner import run_backtest
from scaler.config_loader import parse_settings
from scaler.histories import HistoryLoader, trace_span
from scaler.settings import Settings

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DAY_SECONDS = 86_400
SOURCE_NAME = "trace"
BASELINES = ("reactive", "oracle")
PEAKCAST = ("peakcast", "peakcast+reactive")
# Every level a variant may plan at, so that variants differing only in the level share one
# forecast per replan. A level outside this list still works, with forecasts of its own.
FORECAST_LEVELS = (0.5, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
# Forecast history of every trace: the ForecastSettings default. Seasons are daily and weekly
# (also the default). The weekly season needs two weeks to start and a third to be scored
# against the daily one, so traces with a weekly cycle get a three-week warm-up.
HISTORY_DAYS = 28
# A request trace is sized so that its 99th percentile needs this many replicas at the target
# utilisation. config/peakcast.yaml sizes ServeGen about so: 407.7 req/s at the 99th
# percentile over 25 req/s x 0.8 is 20.4 replicas.
P99_REPLICAS = 20
# The static pool has this share of the GPUs the 99th percentile needs, as the two static
# nodes of config/peakcast.yaml have for ServeGen (16 of 41 GPUs).
STATIC_SHARE = 0.4

Sizing = Literal["config", "p99", "gpus"]


@dataclass(frozen=True)
class TraceCase:
    """One trace column, its unit, its 'no data' values, the span to replay and its sizing.

    ``sizing`` is "config" (the base config's capacity model unchanged), "p99" (throughput
    chosen so that the 99th percentile needs ``P99_REPLICAS`` replicas) or "gpus" (demand
    already in GPUs: one GPU per replica at full utilisation, pools scaled to the trace).
    """

    name: str
    path: Path
    column: str
    kind: str
    unit: str = "requests_per_second"
    sizing: Sizing = "p99"
    missing_values: tuple[float, ...] = ()
    warmup_days: float = 7.0
    simulated_days: float = 7.0


TRACES = (
    TraceCase(
        "servegen",
        ROOT / "data" / "servegen_m-large_10min.csv",
        "req_per_s",
        "LLM request rate, 10 min, bursty, weak daily cycle",
        sizing="config",
    ),
    TraceCase(
        "helios",
        ROOT / "data" / "helios_earth_gpu_demand_1min.csv.gz",
        "demand_gpus",
        "GPU cluster demand in GPUs, 1 min, slow drift and job bursts",
        unit="gpus",
        sizing="gpus",
        missing_values=(0.0,),
        warmup_days=21.0,
        simulated_days=10.0,
    ),
    TraceCase(
        "nyc_taxi",
        ROOT / "data" / "nab_nyc_taxi_30min_2014-07_2014-11.csv",
        "value",
        "taxi passengers, 30 min, strong daily and weekly cycle",
        warmup_days=21.0,
        simulated_days=14.0,
    ),
    TraceCase(
        "elb",
        ROOT / "data" / "nab_elb_request_count_5min.csv",
        "value",
        "load-balancer requests, 5 min, spiky, no daily cycle",
    ),
)
ASG = TraceCase(
    "asg_cpu",
    ROOT / "data" / "nab_asg_cpu_utilization_5min.csv",
    "value",
    "auto-scaling group CPU %, 5 min, spiky, weak daily cycle",
    simulated_days=14.0,
)
# Checks on data the sweep did not choose from: other spans of the same traces, and a fifth
# trace. Windows that start at the same time as in TRACES still differ in length.
HELD_OUT = (
    replace(TRACES[0], name="servegen-b", warmup_days=9.0, simulated_days=5.0),
    replace(TRACES[1], name="helios-b", warmup_days=7.0, simulated_days=14.0),
    replace(TRACES[2], name="nyc_taxi-b", warmup_days=56.0, simulated_days=14.0),
    replace(TRACES[3], name="elb-b", warmup_days=5.0, simulated_days=9.0),
    ASG,
)


@dataclass(frozen=True)
class Variant:
    """A named set of config overrides, keyed by dotted path such as ``forecast.step_seconds``."""

    name: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


# -- configs --------------------------------------------------------------------------------


def base_config(path: Path) -> dict[str, Any]:
    """Read the base config; it must define one static pool, one burst pool and one workload."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    kinds = sorted(pool["kind"] for pool in raw.get("pools", []))
    if len(raw.get("workloads", [])) != 1 or kinds != ["burst", "static"]:
        raise SystemExit(
            f"{path}: the base config must define exactly one workload, one static pool and "
            "one burst pool"
        )
    return dict(raw)


def copy_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a deep copy of a YAML-shaped mapping."""
    copied: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(config)))
    return copied


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """Set ``config[a][b]...`` for the dotted ``key``, creating mappings on the way."""
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def trace_config(raw: Mapping[str, Any], case: TraceCase, values: np.ndarray) -> dict[str, Any]:
    """Return the base config with ``case`` as its one workload, sized from ``values``."""
    config = copy_config(raw)
    source: dict[str, Any] = {"kind": "csv", "path": str(case.path)}
    if case.missing_values:
        source["missing_values"] = {case.column: list(case.missing_values)}
    config["sources"] = {SOURCE_NAME: source}
    workload = config["workloads"][0]
    workload["demand"] = {"source": SOURCE_NAME, "series": case.column, "unit": case.unit}
    config["backtest"]["warmup_seconds"] = int(case.warmup_days * DAY_SECONDS)
    config["backtest"]["duration_seconds"] = int(case.simulated_days * DAY_SECONDS)
    forecast = config["forecast"]
    forecast["levels"] = sorted({*FORECAST_LEVELS, *forecast.get("levels", [])})
    forecast["history_seconds"] = HISTORY_DAYS * DAY_SECONDS
    forecast["season_lengths_seconds"] = [DAY_SECONDS, 7 * DAY_SECONDS]
    if case.sizing != "config":
        size_fleet(config, case, values)
    return config


def size_fleet(config: dict[str, Any], case: TraceCase, values: np.ndarray) -> None:
    """Size the capacity model and both pools to the trace's 99th percentile and maximum."""
    capacity = config["workloads"][0]["capacity"]
    static = next(pool for pool in config["pools"] if pool["kind"] == "static")
    burst = next(pool for pool in config["pools"] if pool["kind"] == "burst")
    p99 = float(np.nanquantile(values, 0.99))
    peak = float(np.nanmax(values))
    if case.sizing == "gpus":
        capacity.update(throughput_per_replica=1.0, gpus_per_replica=1, target_utilization=1.0)
        capacity["min_replicas"] = 0
    else:
        capacity["throughput_per_replica"] = p99 / (P99_REPLICAS * capacity["target_utilization"])
    per_replica = capacity["throughput_per_replica"] * capacity["target_utilization"]
    gpus_p99 = math.ceil(p99 / per_replica) * capacity["gpus_per_replica"]
    gpus_peak = math.ceil(peak / per_replica) * capacity["gpus_per_replica"]

    static_nodes = max(1, round(STATIC_SHARE * gpus_p99 / static["gpus_per_node"]))
    static["min_nodes"] = static["max_nodes"] = static_nodes
    burst_gpus = max(0, gpus_peak - static_nodes * static["gpus_per_node"])
    needed_nodes = math.ceil(1.25 * burst_gpus / burst["gpus_per_node"])
    burst["max_nodes"] = max(burst["max_nodes"], needed_nodes)
    needed_replicas = math.ceil(1.25 * gpus_peak / capacity["gpus_per_replica"])
    capacity["max_replicas"] = max(capacity["max_replicas"], needed_replicas)


def variant_settings(
    config: Mapping[str, Any], variant: Variant, trace_step: pd.Timedelta
) -> Settings:
    """Return ``config`` with the variant's overrides, validated.

    A model step finer than the trace's step is raised to it here, as the forecast engine
    would do, so that every variant names the step it really ran at.
    """
    merged = copy_config(config)
    for key, value in variant.overrides.items():
        set_dotted(merged, key, value)
    forecast = merged["forecast"]
    forecast["step_seconds"] = max(forecast["step_seconds"], int(trace_step.total_seconds()))
    return parse_settings(merged, ROOT)


def load_history(settings: Settings) -> History:
    """Read the one workload's whole trace."""
    loader = HistoryLoader(settings)
    workload = settings.workloads[0]
    span = trace_span(loader, [workload])
    if span is None:
        raise SystemExit("tuning needs CSV traces, not a live source")
    return loader.load(workload, span[0], span[1])


# -- forecast reuse -------------------------------------------------------------------------

Store = dict[tuple[Any, ...], Any]


class CachingEngine:
    """A forecast engine whose fits, updates and predictions are kept in a shared store.

    A forecaster is keyed by the history ends it was fitted and updated on, so two backtests
    with the same forecast settings, trace and replan schedule get the same objects back.
    """

    def __init__(self, engine: ForecastEngine, store: Store) -> None:
        self._engine = engine
        self._store = store

    def fit(self, history: History) -> CachedForecaster:
        key = ("fit", history.name, history.start, history.end)
        if key not in self._store:
            self._store[key] = self._engine.fit(history)
        return CachedForecaster(self._store[key], key, self._store)


class CachedForecaster:
    """A fitted forecaster whose updates and predictions go through the shared store."""

    def __init__(self, fitted: FittedForecaster, key: tuple[Any, ...], store: Store) -> None:
        self._fitted = fitted
        self._key = key
        self._store = store

    def update(self, history: History) -> CachedForecaster:
        key = (*self._key, "update", history.end)
        if key not in self._store:
            self._store[key] = self._fitted.update(history)
        return CachedForecaster(self._store[key], key, self._store)

    def predict(self, h: int | None = None) -> Forecast:
        key = (*self._key, "predict", h)
        if key not in self._store:
            self._store[key] = self._fitted.predict(h)
        forecast: Forecast = self._store[key]
        return forecast


def forecast_key(settings: Settings) -> str:
    """Return what a forecast depends on: the forecast settings but the planning level, and
    the replan interval."""
    forecast = settings.forecast.model_dump(mode="json")
    forecast.pop("planning_level")
    return json.dumps([forecast, settings.backtest.replan_interval_seconds], sort_keys=True)


def baseline_key(settings: Settings) -> str:
    """Return what the reactive and oracle runs depend on: fleet, simulator and backtest span."""
    parts = {
        "pools": [pool.model_dump(mode="json") for pool in settings.pools],
        "workloads": [workload.model_dump(mode="json") for workload in settings.workloads],
        "simulator": settings.simulator.model_dump(mode="json"),
        "backtest": settings.backtest.model_dump(mode="json"),
    }
    return json.dumps(parts, sort_keys=True)


# -- runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One variant on one trace: each peakcast policy against the reactive and oracle runs.

    Per policy: ``shortfall_share`` = under-provisioned GPU-minutes over reactive's,
    ``gpu_hours_ratio`` = GPU-hours over the oracle's (all pools), ``burst_ratio`` = the same
    for the burst pool alone.
    """

    trace: str
    variant: str
    shortfall_share: dict[str, float]
    gpu_hours_ratio: dict[str, float]
    burst_ratio: dict[str, float]
    metrics: dict[str, RunMetrics]


@dataclass(frozen=True)
class TraceSetup:
    """A trace's sized config and history."""

    case: TraceCase
    config: dict[str, Any]
    history: History


class Tuner:
    """Runs variants on traces, reusing forecasts and baseline runs between variants."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw
        self._setups: dict[str, TraceSetup] = {}
        self._forecasts: dict[str, Store] = {}
        self._baselines: dict[str, dict[str, RunMetrics]] = {}

    def setup(self, case: TraceCase) -> TraceSetup:
        """Return the trace's sized config and history, read once."""
        if case.name not in self._setups:
            probe = parse_settings(trace_config(self._raw, case, np.array([1.0])), ROOT)
            history = load_history(probe)
            config = trace_config(self._raw, case, history.values.to_numpy(dtype=float))
            self._setups[case.name] = TraceSetup(case, config, history)
        return self._setups[case.name]

    def settings(self, case: TraceCase, variant: Variant) -> Settings:
        """Return the validated settings of ``variant`` on ``case``."""
        setup = self.setup(case)
        return variant_settings(setup.config, variant, setup.history.step)

    def run(self, case: TraceCase, variant: Variant) -> Cell:
        """Backtest ``variant`` on ``case``: both peakcast policies, baselines when new."""
        setup = self.setup(case)
        settings = self.settings(case, variant)
        store = self._forecasts.setdefault(f"{case.name}|{forecast_key(settings)}", {})
        engine = CachingEngine(ForecastEngine(settings.forecast), store)
        key = f"{case.name}|{baseline_key(settings)}"
        policies = list(PEAKCAST) if key in self._baselines else [*BASELINES, *PEAKCAST]
        name = settings.workloads[0].name
        result = run_backtest(settings, {name: setup.history}, policies, engine=engine)
        metrics = {policy: run.metrics for policy, run in result.runs.items()}
        if key not in self._baselines:
            self._baselines[key] = {policy: metrics[policy] for policy in BASELINES}
        return make_cell(case.name, variant.name, settings, {**self._baselines[key], **metrics})

    def reactive(self, case: TraceCase, utilization_factor: float) -> RunMetrics:
        """Run the reactive baseline with its target utilisation scaled by the factor."""
        setup = self.setup(case)
        config = copy_config(setup.config)
        capacity = config["workloads"][0]["capacity"]
        capacity["target_utilization"] = capacity["target_utilization"] * utilization_factor
        settings = variant_settings(config, Variant("headroom"), setup.history.step)
        name = settings.workloads[0].name
        result = run_backtest(settings, {name: setup.history}, ["reactive"])
        return result.runs["reactive"].metrics

    def baselines(self, case: TraceCase) -> dict[str, RunMetrics]:
        """Return the reactive and oracle runs at the trace's own fleet and settings."""
        settings = self.settings(case, Variant("baselines"))
        key = f"{case.name}|{baseline_key(settings)}"
        if key not in self._baselines:
            setup = self.setup(case)
            name = settings.workloads[0].name
            result = run_backtest(settings, {name: setup.history}, list(BASELINES))
            self._baselines[key] = {p: result.runs[p].metrics for p in BASELINES}
        return self._baselines[key]


def burst_gpu_hours(metrics: RunMetrics, settings: Settings) -> float:
    """Return the GPU-hours of the burst pools alone."""
    burst = {pool.name for pool in settings.pools if pool.kind == "burst"}
    return sum(m.gpu_hours for name, m in metrics.pools.items() if name in burst)


def make_cell(
    trace: str, variant: str, settings: Settings, metrics: Mapping[str, RunMetrics]
) -> Cell:
    """Compare each peakcast policy in ``metrics`` with its reactive and oracle runs."""
    reactive, oracle = metrics["reactive"], metrics["oracle"]
    oracle_burst = burst_gpu_hours(oracle, settings)
    shares, ratios, bursts = {}, {}, {}
    for policy in PEAKCAST:
        mine = metrics[policy]
        shares[policy] = share_of(mine.shortfall_gpu_minutes, reactive.shortfall_gpu_minutes)
        ratios[policy] = mine.gpu_hours / oracle.gpu_hours
        burst = burst_gpu_hours(mine, settings)
        bursts[policy] = burst / oracle_burst if oracle_burst > 0 else math.inf
    return Cell(trace, variant, shares, ratios, bursts, dict(metrics))


def share_of(value: float, baseline: float) -> float:
    """Return ``value / baseline``; a zero baseline gives 0 for zero, else infinity."""
    if baseline > 0:
        return value / baseline
    return 0.0 if value <= 0 else math.inf

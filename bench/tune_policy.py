"""Tune peakcast's planning defaults on several real traces at once.

Each variant is a set of config overrides (dotted keys) on top of config/peakcast.yaml. Every
variant is backtested on every trace, and the table gives, per trace, peakcast's
under-provisioned GPU-minutes as a share of the reactive baseline's and its GPU-hours over the
oracle's, for ``peakcast`` (predictive alone) and ``peakcast+reactive``.

Forecasts depend only on the forecast settings and the replan interval, so variants that differ
in policy settings alone reuse them (see ``CachingEngine``); ``reactive`` and ``oracle`` run once
per trace and lead-time setting.

    .venv/bin/python bench/tune_policy.py                      # the sweep, about 8 min
    .venv/bin/python bench/tune_policy.py --grid chosen        # the defaults only
    .venv/bin/python bench/tune_policy.py --grid none --variant mine \\
        --set forecast.planning_level=0.75 --set policy.stabilization_window_seconds=600
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from forecaster.engine import ForecastEngine
from forecaster.errors import ConfigError
from forecaster.forecast import Forecast
from forecaster.history import History
from scaler.backtest.metrics import RunMetrics
from scaler.backtest.runner import run_backtest
from scaler.config_loader import parse_settings
from scaler.histories import HistoryLoader, trace_span
from scaler.settings import Settings

logger = logging.getLogger("bench.tune_policy")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "peakcast.yaml"
DAY_SECONDS = 86_400
SOURCE_NAME = "trace"
SHORTFALL_TARGET = 0.20
GPU_HOURS_TARGET = 1.15
BASELINES = ("reactive", "oracle")
PEAKCAST = ("peakcast", "peakcast+reactive")
# Every level a variant may plan at, so that all variants share one forecast per replan.
FORECAST_LEVELS = (0.5, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

# Sizing of a trace that is not already in GPUs: its 99th percentile needs this many replicas
# at the target utilisation. config/peakcast.yaml sizes ServeGen so (407.7 req/s at p99 over
# 25 req/s x 0.8 is 20.4 replicas).
P99_REPLICAS = 20
# The static (on-prem) pool holds this share of the GPUs the 99th percentile needs, as the two
# static nodes of config/peakcast.yaml do for ServeGen (16 of about 41 GPUs).
STATIC_SHARE = 0.4

# Forecast history and seasons of every trace: the ForecastSettings defaults. A weekly season
# is used once the history holds three weeks (two to start the season, one to score it), so
# the traces with a weekly cycle get a three-week warm-up.
HISTORY_DAYS = 28

Sizing = Literal["config", "p99", "gpus"]


@dataclass(frozen=True)
class TraceCase:
    """One trace column, its unit, its 'no data' values, the span to replay and its sizing.

    ``sizing`` is "config" (the base config's capacity model as it is), "p99" (throughput chosen
    so the trace's p99 needs ``P99_REPLICAS`` replicas) or "gpus" (demand already in GPUs: one
    GPU per replica, pools scaled to the trace).
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
        "GPU cluster demand in GPUs, 1 min, slow drift",
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
EXTRA_TRACES = (
    TraceCase(
        "asg_cpu",
        ROOT / "data" / "nab_asg_cpu_utilization_5min.csv",
        "value",
        "auto-scaling group CPU %, 5 min, spiky with a level shift",
        simulated_days=14.0,
    ),
)


@dataclass(frozen=True)
class Variant:
    """A named set of config overrides, keyed by dotted path (``policy.lead_time_margin_seconds``)."""

    name: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


def sweep_variants() -> list[Variant]:
    """Return the default grid.

    First one knob at a time around the defaults before tuning, then the level and the
    stabilisation window crossed on top of the structural changes that helped on every trace
    (filling free node slots, more calibration windows, a 10-minute model step).
    """
    variants = [Variant("old defaults", OLD_DEFAULTS, "defaults before tuning")]
    for key, values in ONE_AT_A_TIME:
        for value in values:
            variants.append(Variant(f"old, {_short(key)}={_text(value)}", {**OLD_DEFAULTS, key: value}))
    for level in NEW_LEVELS:
        for window in NEW_STABILIZATION_SECONDS:
            overrides = {
                **NEW_STRUCTURE,
                "forecast.planning_level": level,
                "policy.stabilization_window_seconds": window,
            }
            variants.append(Variant(f"new, level={level:g}, stabilization={window}", overrides))
    for key, value in NEW_EXTRAS:
        overrides = {**NEW_STRUCTURE, "forecast.planning_level": 0.8, key: value}
        variants.append(Variant(f"new, level=0.8, {_short(key)}={_text(value)}", overrides))
    return variants


def _short(key: str) -> str:
    return key.split(".", 1)[1]


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# The settings of config/peakcast.yaml before this tuning, so the sweep stays comparable after
# the defaults change.
OLD_DEFAULTS: dict[str, Any] = {
    "forecast.step_seconds": 1800,
    "forecast.aggregation": "max",
    "forecast.planning_level": 0.9,
    "forecast.calibration_windows": 14,
    "policy.lead_time_margin_seconds": 120,
    "policy.stabilization_window_seconds": 1800,
    "policy.max_scale_down_nodes_per_cycle": 1,
    "policy.max_scale_down_replicas_per_cycle": 2,
    "policy.workload_floor_fills_nodes": False,
    "backtest.replan_interval_seconds": 3600,
}

ONE_AT_A_TIME: list[tuple[str, list[Any]]] = [
    ("forecast.planning_level", [0.5, 0.75, 0.95]),
    ("forecast.step_seconds", [600, 3600]),
    ("forecast.aggregation", ["mean", "p95"]),
    ("forecast.calibration_windows", [56]),
    ("policy.workload_floor_fills_nodes", [True]),
    ("policy.lead_time_margin_seconds", [0, 300]),
    ("policy.stabilization_window_seconds", [0, 600]),
    ("backtest.replan_interval_seconds", [600]),
]

NEW_STRUCTURE: dict[str, Any] = {
    **OLD_DEFAULTS,
    "forecast.step_seconds": 600,
    "forecast.calibration_windows": 56,
    "policy.workload_floor_fills_nodes": True,
}
NEW_LEVELS = (0.7, 0.75, 0.8, 0.85, 0.9)
NEW_STABILIZATION_SECONDS = (600, 1800)
NEW_EXTRAS: list[tuple[str, Any]] = [
    ("forecast.step_seconds", 300),
    ("backtest.replan_interval_seconds", 600),
    ("policy.max_scale_down_replicas_per_cycle", 8),
]

CHOSEN = Variant("chosen", {}, "the defaults in config/peakcast.yaml")


# -- config building ------------------------------------------------------------------------


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


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """Set ``config[a][b]...`` for the dotted ``key``, creating mappings on the way."""
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def trace_config(raw: dict[str, Any], case: TraceCase, values: np.ndarray) -> dict[str, Any]:
    """Return the base config with ``case`` as its one workload, sized by ``case.sizing``."""
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy
    source: dict[str, Any] = {"kind": "csv", "path": str(case.path)}
    if case.missing_values:
        source["missing_values"] = {case.column: list(case.missing_values)}
    config["sources"] = {SOURCE_NAME: source}
    workload = config["workloads"][0]
    workload["demand"] = {"source": SOURCE_NAME, "series": case.column, "unit": case.unit}
    config["backtest"]["warmup_seconds"] = int(case.warmup_days * DAY_SECONDS)
    config["backtest"]["duration_seconds"] = int(case.simulated_days * DAY_SECONDS)
    config["forecast"]["levels"] = list(FORECAST_LEVELS)
    config["forecast"]["history_seconds"] = HISTORY_DAYS * DAY_SECONDS
    config["forecast"]["season_lengths_seconds"] = [DAY_SECONDS, 7 * DAY_SECONDS]
    if case.sizing != "config":
        _size_fleet(config, case, values)
    return config


def _size_fleet(config: dict[str, Any], case: TraceCase, values: np.ndarray) -> None:
    """Size the capacity model and pools to the trace (see ``P99_REPLICAS``, ``STATIC_SHARE``)."""
    workload = config["workloads"][0]
    capacity = workload["capacity"]
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
    gpus_at = {
        q: math.ceil(v / per_replica) * capacity["gpus_per_replica"]
        for q, v in (("p99", p99), ("peak", peak))
    }
    static_nodes = max(1, round(STATIC_SHARE * gpus_at["p99"] / static["gpus_per_node"]))
    static["min_nodes"] = static["max_nodes"] = static_nodes
    burst_gpus = max(0, gpus_at["peak"] - static_nodes * static["gpus_per_node"])
    burst["max_nodes"] = max(
        burst["max_nodes"], math.ceil(1.25 * burst_gpus / burst["gpus_per_node"])
    )
    capacity["max_replicas"] = max(
        capacity["max_replicas"], math.ceil(1.25 * gpus_at["peak"] / capacity["gpus_per_replica"])
    )


def variant_settings(
    config: dict[str, Any], variant: Variant, trace_step: pd.Timedelta | None = None
) -> Settings:
    """Return ``config`` with the variant's overrides, validated.

    A model step finer than the trace's own step is raised to the trace step, because a model
    step cannot be shorter than the history step it aggregates.
    """
    merged: dict[str, Any] = yaml.safe_load(yaml.safe_dump(config))
    for key, value in variant.overrides.items():
        set_dotted(merged, key, value)
    if trace_step is not None:
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


class CachingEngine:
    """A ``ForecastEngine`` whose fits, updates and predictions are kept in a shared store.

    Keys are the chain of history ends a forecaster was fitted and updated on, so two backtests
    with the same forecast settings, trace and replan schedule get the same objects back.
    """

    def __init__(self, engine: ForecastEngine, store: dict[tuple[Any, ...], Any]) -> None:
        self._engine = engine
        self._store = store

    def fit(self, history: History) -> _CachedFitted:
        key = ("fit", history.name, history.start, history.end)
        if key not in self._store:
            self._store[key] = self._engine.fit(history)
        return _CachedFitted(self._store[key], key, self._store)


class _CachedFitted:
    def __init__(self, fitted: Any, key: tuple[Any, ...], store: dict[tuple[Any, ...], Any]):
        self._fitted = fitted
        self._key = key
        self._store = store

    def update(self, history: History) -> _CachedFitted:
        key = (*self._key, "update", history.end)
        if key not in self._store:
            self._store[key] = self._fitted.update(history)
        return _CachedFitted(self._store[key], key, self._store)

    def predict(self, h: int | None = None) -> Forecast:
        key = (*self._key, "predict", h)
        if key not in self._store:
            self._store[key] = self._fitted.predict(h)
        forecast: Forecast = self._store[key]
        return forecast


def forecast_key(settings: Settings) -> str:
    """Return what a forecast depends on: the forecast settings but the planning level, and
    the replan interval. A planning level outside ``FORECAST_LEVELS`` still changes ``levels``.
    """
    forecast = settings.forecast.model_dump(mode="json")
    forecast.pop("planning_level")
    return json.dumps([forecast, settings.backtest.replan_interval_seconds], sort_keys=True)


def baseline_key(settings: Settings) -> str:
    """Return what the reactive and oracle runs depend on."""
    parts = [settings.simulator, settings.backtest, settings.pools, settings.workloads]
    return json.dumps(
        [
            part.model_dump(mode="json")
            if hasattr(part, "model_dump")
            else [p.model_dump(mode="json") for p in part]
            for part in parts
        ],
        sort_keys=True,
    )


# -- running --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One variant on one trace: peakcast's metrics and the baselines' totals."""

    trace: str
    variant: str
    shortfall_share: dict[str, float]
    gpu_hours_ratio: dict[str, float]
    burst_ratio: dict[str, float]
    reactive_shortfall: float
    oracle_gpu_hours: float


class Tuner:
    """Runs variants on traces, reusing forecasts and baseline runs between variants."""

    def __init__(self, raw: dict[str, Any], cases: Sequence[TraceCase]) -> None:
        self._raw = raw
        self._cases = cases
        self._configs: dict[str, dict[str, Any]] = {}
        self._histories: dict[str, History] = {}
        self._forecasts: dict[str, dict[tuple[Any, ...], Any]] = {}
        self._baselines: dict[str, Mapping[str, RunMetrics]] = {}

    def prepare(self, case: TraceCase) -> dict[str, Any]:
        """Build the trace's sized config (once) and read its history."""
        if case.name not in self._configs:
            probe = trace_config(self._raw, case, np.array([1.0]))
            probe_settings = parse_settings(probe, ROOT)
            history = load_history(probe_settings)
            values = history.values.to_numpy(dtype=float)
            self._configs[case.name] = trace_config(self._raw, case, values)
        return self._configs[case.name]

    def run(self, case: TraceCase, variant: Variant) -> Cell:
        config = self.prepare(case)
        history = self._histories.get(case.name)
        if history is None:
            history = self._histories[case.name] = load_history(parse_settings(config, ROOT))
        settings = variant_settings(config, variant, history.step)
        name = settings.workloads[0].name
        store = self._forecasts.setdefault(f"{case.name}|{forecast_key(settings)}", {})
        engine = CachingEngine(ForecastEngine(settings.forecast), store)
        bkey = f"{case.name}|{baseline_key(settings)}"
        policies = list(PEAKCAST) if bkey in self._baselines else [*BASELINES, *PEAKCAST]
        result = run_backtest(settings, {name: history}, policies, engine=engine)
        metrics = {policy: run.metrics for policy, run in result.runs.items()}
        if bkey not in self._baselines:
            self._baselines[bkey] = {p: metrics[p] for p in BASELINES}
        baselines = self._baselines[bkey]
        return cell(case.name, variant.name, settings, metrics, baselines)


def burst_gpu_hours(metrics: RunMetrics, settings: Settings) -> float:
    burst = {pool.name for pool in settings.pools if pool.kind == "burst"}
    return sum(m.gpu_hours for name, m in metrics.pools.items() if name in burst)


def cell(
    trace: str,
    variant: str,
    settings: Settings,
    metrics: Mapping[str, RunMetrics],
    baselines: Mapping[str, RunMetrics],
) -> Cell:
    reactive, oracle = baselines["reactive"], baselines["oracle"]
    shares, ratios, bursts = {}, {}, {}
    for policy in PEAKCAST:
        mine = metrics[policy]
        shares[policy] = _share(mine.shortfall_gpu_minutes, reactive.shortfall_gpu_minutes)
        ratios[policy] = mine.gpu_hours / oracle.gpu_hours
        bursts[policy] = burst_gpu_hours(mine, settings) / burst_gpu_hours(oracle, settings)
    return Cell(
        trace, variant, shares, ratios, bursts, reactive.shortfall_gpu_minutes, oracle.gpu_hours
    )


def _share(value: float, baseline: float) -> float:
    if baseline > 0:
        return value / baseline
    return 0.0 if value <= 0 else math.inf


# -- output ---------------------------------------------------------------------------------


def met(share: float, ratio: float) -> bool:
    return share <= SHORTFALL_TARGET and ratio <= GPU_HOURS_TARGET


def distance(share: float, ratio: float) -> float:
    """Return how far a result is from the target: 1 or less means both parts are met."""
    return max(share / SHORTFALL_TARGET, ratio / GPU_HOURS_TARGET)


def table(cells: Sequence[Cell], traces: Sequence[str], policy: str) -> list[str]:
    """Return a markdown table: one row per variant, shortfall share / GPU-hour ratio per trace.

    A result that meets the target is bold. "worst" is the largest ``distance`` over the
    traces, so a variant with a lower one is nearer to meeting the target everywhere.
    """
    header = ["variant", *traces, "met", "worst"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    by_variant: dict[str, dict[str, Cell]] = {}
    for item in cells:
        by_variant.setdefault(item.variant, {})[item.trace] = item
    for variant, row in by_variant.items():
        entries, distances = [], []
        for trace in traces:
            found = row.get(trace)
            if found is None:
                entries.append("–")
                continue
            share, ratio = found.shortfall_share[policy], found.gpu_hours_ratio[policy]
            text = f"{share:.0%} / {ratio:.2f}×"
            entries.append(f"**{text}**" if met(share, ratio) else text)
            distances.append(distance(share, ratio))
        hits = sum(value <= 1 for value in distances)
        worst = f"{max(distances):.2f}" if distances else "–"
        lines.append(f"| {variant} | {' | '.join(entries)} | {hits}/{len(distances)} | {worst} |")
    return lines


def parse_value(text: str) -> Any:
    """Read a ``--set`` value as YAML, so numbers, booleans and lists keep their type."""
    return yaml.safe_load(text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="Base config.")
    parser.add_argument(
        "--grid",
        choices=["sweep", "chosen", "none"],
        default="sweep",
        help="Variants to run: the sweep (default), the current defaults only, or none "
        "(only --set).",
    )
    parser.add_argument(
        "--traces",
        default=",".join(case.name for case in TRACES),
        help="Comma-separated trace names; known: "
        + ", ".join(case.name for case in (*TRACES, *EXTRA_TRACES)),
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Config override of an extra variant (dotted key, YAML value); repeat for more.",
    )
    parser.add_argument("--variant", default="custom", help="Name of the --set variant.")
    parser.add_argument(
        "--match", default="", help="Run only the grid variants whose name contains this text."
    )
    parser.add_argument(
        "--days", type=float, default=None, help="Simulate at most this many days per trace."
    )
    return parser.parse_args(argv)


def chosen_cases(names: str, days: float | None) -> list[TraceCase]:
    known = {case.name: case for case in (*TRACES, *EXTRA_TRACES)}
    cases = []
    for name in filter(None, names.split(",")):
        if name not in known:
            raise SystemExit(f"--traces: unknown trace {name!r}; known: {', '.join(known)}")
        case = known[name]
        if days is not None:
            case = TraceCase(**{**case.__dict__, "simulated_days": min(days, case.simulated_days)})
        cases.append(case)
    return cases


def variants_for(args: argparse.Namespace) -> list[Variant]:
    variants = {"sweep": sweep_variants, "chosen": lambda: [CHOSEN], "none": list}[args.grid]()
    variants = [variant for variant in variants if args.match in variant.name]
    if args.set:
        overrides = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
            overrides[key] = parse_value(value)
        variants.append(Variant(args.variant, overrides))
    return variants


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    cases = chosen_cases(args.traces, args.days)
    tuner = Tuner(base_config(args.config), cases)
    cells: list[Cell] = []
    started = time.perf_counter()
    for variant in variants_for(args):
        for case in cases:
            t0 = time.perf_counter()
            try:
                found = tuner.run(case, variant)
            except ConfigError as error:
                print(f"{variant.name:<32} {case.name:<10} skipped: {error}", file=sys.stderr)
                continue
            cells.append(found)
            print(
                f"{variant.name:<32} {case.name:<10} "
                + "  ".join(
                    f"{p}: {found.shortfall_share[p]:.0%} / {found.gpu_hours_ratio[p]:.2f}x"
                    f" (burst {found.burst_ratio[p]:.2f}x)"
                    for p in PEAKCAST
                )
                + f"  [{time.perf_counter() - t0:.1f} s]",
                file=sys.stderr,
                flush=True,
            )
    names = [case.name for case in cases]
    for policy in PEAKCAST:
        print(f"\n{policy}: under-provisioned GPU-min vs reactive / GPU-hours vs oracle\n")
        print("\n".join(table(cells, names, policy)))
    print(f"\n{len(cells)} backtests in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

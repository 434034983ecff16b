"""Backtest every bundled trace through all policies, and time a 28-day backtest.

Each trace long enough for the warm-up plus ``--min-days`` of simulation is replayed through
the simulator with a config built from config/peakcast.yaml: same pools, lead times, policy
and forecast settings, with the trace as the one workload's demand. The per-trace change is
the throughput per replica, chosen so that the trace's maximum needs ``PEAK_REPLICAS``
replicas at the target utilisation, which puts several nodes on the burst pool at the peak.
Results go to stdout and to the backtest section of docs/BENCHMARKS.md.

    .venv/bin/python bench/backtest_traces.py
    .venv/bin/python bench/backtest_traces.py --trace data/my.csv:requests --unit gpus \\
        --missing requests=0 --no-write
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from forecaster.history import History
from scaler.backtest.metrics import RunMetrics
from scaler.backtest.policies import DEFAULT_POLICIES
from scaler.backtest.runner import BacktestResult, run_backtest
from scaler.config_loader import parse_settings
from scaler.core.capacity import Fleet
from scaler.histories import HistoryLoader, trace_span
from scaler.report.from_backtest import target_checks
from scaler.report.model import TargetCheck
from scaler.settings import Settings

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sections import write_section

logger = logging.getLogger("bench.backtest_traces")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "peakcast.yaml"
START_MARKER = "<!-- backtest:start -->"
END_MARKER = "<!-- backtest:end -->"
DAY = pd.Timedelta(days=1)
# The trace's maximum needs this many replicas at the target utilisation. With the default
# pools (2 static nodes of 8 GPUs, 2 GPUs per replica) that is 8 replicas on the static pool
# and 22 on 6 burst nodes: the config/peakcast.yaml sizing of the ServeGen trace.
PEAK_REPLICAS = 30
SOURCE_NAME = "trace"
TIMING_TARGET_SECONDS = 60.0
# Below this unserved share of reactive, a trace hardly tests under-provisioning.
EASY_REACTIVE_UNSERVED = 0.001
err = Console(stderr=True)


@dataclass(frozen=True)
class TraceSpec:
    """One column of one CSV trace, its demand unit, its 'no data' values and what it is."""

    path: Path
    column: str
    unit: str = "requests_per_second"
    missing_values: tuple[float, ...] = ()
    kind: str = "user trace"

    @property
    def label(self) -> str:
        return f"{self.path.name}:{self.column}"


BUNDLED = (
    TraceSpec(
        ROOT / "data" / "servegen_m-large_10min.csv",
        "req_per_s",
        kind="LLM serving request rate",
    ),
    TraceSpec(
        ROOT / "data" / "azure_llm_2023_1s.csv",
        "conv_requests",
        kind="LLM serving requests per second",
    ),
    TraceSpec(
        ROOT / "data" / "helios_earth_gpu_demand_1min.csv.gz",
        "demand_gpus",
        unit="gpus",
        missing_values=(0.0,),
        kind="GPU cluster demand in GPUs (zeros are outages, read as missing)",
    ),
    TraceSpec(
        ROOT / "data" / "nab_nyc_taxi_30min_2014-07_2014-11.csv",
        "value",
        kind="not a GPU trace: taxi passengers per 30 min, used as generic demand",
    ),
    TraceSpec(
        ROOT / "data" / "nab_elb_request_count_5min.csv",
        "value",
        kind="not a GPU trace: load-balancer requests per 5 min, used as generic demand",
    ),
    TraceSpec(
        ROOT / "data" / "nab_asg_cpu_utilization_5min.csv",
        "value",
        kind="not a GPU trace: CPU percent of an auto-scaling group, used as generic demand",
    ),
)
TIMING_TRACE = BUNDLED[3]


@dataclass(frozen=True)
class TraceRun:
    """One trace's backtest: its config, result and wall time."""

    spec: TraceSpec
    settings: Settings
    result: BacktestResult
    peak: float
    step: pd.Timedelta
    wall_seconds: float


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trace",
        action="append",
        metavar="PATH:COLUMN",
        help="CSV trace and demand column; repeat for more. Default: the bundled traces.",
    )
    parser.add_argument(
        "--unit",
        default="requests_per_second",
        choices=["requests_per_second", "tokens_per_second", "gpus"],
        help="Demand unit of the --trace columns (default requests_per_second).",
    )
    parser.add_argument(
        "--missing",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="A value of COLUMN that means 'no data' in the --trace files; repeat for more.",
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="Base config.")
    parser.add_argument(
        "--policies", default=",".join(DEFAULT_POLICIES), help="Comma-separated policies."
    )
    parser.add_argument(
        "--min-days",
        type=float,
        default=3.0,
        help="Simulated days a trace must leave after the warm-up to be run (default 3).",
    )
    parser.add_argument(
        "--max-days",
        type=float,
        default=None,
        help="Simulate at most this many days per trace (default: the whole trace).",
    )
    parser.add_argument(
        "--timing-days",
        type=float,
        default=28.0,
        help="Simulated days of the timing run on the NYC taxi trace (0 skips it).",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "BENCHMARKS.md",
        help="Markdown file whose backtest section is replaced.",
    )
    parser.add_argument("--no-write", action="store_true", help="Print only.")
    return parser.parse_args(argv)


def user_specs(traces: Sequence[str], unit: str, missing: Sequence[str]) -> list[TraceSpec]:
    """Build trace specs from ``PATH:COLUMN`` and ``COLUMN=VALUE`` arguments."""
    missing_by_column: dict[str, list[float]] = {}
    for item in missing:
        column, _, value = item.partition("=")
        if not column or not value:
            raise SystemExit(f"--missing {item!r}: expected COLUMN=VALUE")
        missing_by_column.setdefault(column, []).append(float(value))
    specs = []
    for item in traces:
        path, _, column = item.rpartition(":")
        if not path or not column:
            raise SystemExit(f"--trace {item!r}: expected PATH:COLUMN")
        resolved = Path(path) if Path(path).is_absolute() else Path.cwd() / path
        values = tuple(missing_by_column.get(column, []))
        specs.append(TraceSpec(resolved, column, unit, values))
    return specs


def base_config(path: Path) -> dict[str, Any]:
    """Read the base config as a mapping; it must have exactly one workload."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if len(raw.get("workloads", [])) != 1:
        raise SystemExit(f"{path}: the base config must define exactly one workload")
    return dict(raw)


def trace_settings(
    raw: dict[str, Any], spec: TraceSpec, throughput: float, duration_days: float | None
) -> Settings:
    """Return the base config with the trace as its one workload's demand."""
    config = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy
    source: dict[str, Any] = {"kind": "csv", "path": str(spec.path)}
    if spec.missing_values:
        source["missing_values"] = {spec.column: list(spec.missing_values)}
    config["sources"] = {SOURCE_NAME: source}
    workload = config["workloads"][0]
    workload["demand"] = {"source": SOURCE_NAME, "series": spec.column, "unit": spec.unit}
    workload["capacity"]["throughput_per_replica"] = throughput
    if duration_days is not None:
        config["backtest"]["duration_seconds"] = int(duration_days * 86400)
    return parse_settings(config, ROOT)


def peak_throughput(settings: Settings, peak: float) -> float:
    """Return the throughput per replica at which ``peak`` needs ``PEAK_REPLICAS`` replicas."""
    utilization = settings.workloads[0].capacity.target_utilization
    return peak / (PEAK_REPLICAS * utilization)


def load_history(settings: Settings) -> History:
    """Read the one workload's whole trace."""
    loader = HistoryLoader(settings)
    workload = settings.workloads[0]
    span = trace_span(loader, [workload])
    if span is None:
        raise SystemExit("the benchmark needs CSV traces, not a live source")
    return loader.load(workload, span[0], span[1])


def skip_reason(history: History, settings: Settings, min_days: float) -> str | None:
    """Return why a trace is too short for a backtest, or None when it is long enough."""
    span = history.end - history.start + history.step
    warmup = pd.Timedelta(seconds=settings.backtest.warmup_seconds)
    needed = warmup + min_days * DAY
    if span < needed:
        return (
            f"spans {span / DAY:.2f} d, needs {needed / DAY:g} d "
            f"({warmup / DAY:g} d warm-up + {min_days:g} d simulated)"
        )
    return None


def run_trace(
    raw: dict[str, Any],
    spec: TraceSpec,
    policies: list[str],
    min_days: float,
    max_days: float | None,
) -> TraceRun | str:
    """Backtest one trace; return the run, or the reason it was skipped."""
    probe = trace_settings(raw, spec, 1.0, None)
    history = load_history(probe)
    reason = skip_reason(history, probe, min_days)
    if reason is not None:
        return reason
    peak = float(np.nanmax(history.values.to_numpy(dtype=float)))
    settings = trace_settings(raw, spec, peak_throughput(probe, peak), max_days)
    history = load_history(settings)
    name = settings.workloads[0].name
    with Progress(
        TextColumn(f"{spec.label:<45}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("backtest", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        started = time.perf_counter()
        result = run_backtest(settings, {name: history}, policies, progress=tick)
        wall = time.perf_counter() - started
    return TraceRun(spec, settings, result, peak, history.step, wall)


def burst_nodes_at_peak(settings: Settings) -> int:
    """Return the burst nodes ``PEAK_REPLICAS`` replicas take with the config's pools."""
    fleet = Fleet(settings.pools, settings.workloads)
    placement = fleet.place({settings.workloads[0].name: PEAK_REPLICAS})
    return sum(int(placement.nodes[p.name]) for p in settings.pools if p.kind == "burst")


def _percent(value: float, baseline: float | None) -> str:
    if baseline is None or baseline == 0:
        return "–"
    return f"{value / baseline:.0%}"


def _ratio(value: float, baseline: float | None) -> str:
    if baseline is None or baseline == 0:
        return "–"
    return f"{value / baseline:.2f}×"


def _share(value: float | None) -> str:
    if value is None:
        return "–"
    if value == float("inf"):
        return "∞"
    # One decimal, so a share just over the 20 % limit does not print as the limit.
    return f"{value:.1%}"


def trace_table(runs: list[TraceRun]) -> list[str]:
    lines = [
        "| trace | what it is | step | simulated days | peak | throughput per replica |",
        "|---|---|---|---:|---:|---:|",
    ]
    for run in runs:
        capacity = run.settings.workloads[0].capacity
        lines.append(
            f"| {run.spec.label} | {run.spec.kind} | {run.step / pd.Timedelta(minutes=1):g} min "
            f"| {run.result.minutes / 1440:.1f} | {run.peak:,.1f} "
            f"| {capacity.throughput_per_replica:,.3f} |"
        )
    return lines


def policy_table(runs: list[TraceRun]) -> list[str]:
    lines = [
        "| trace | policy | under-provisioned GPU-min | vs reactive | GPU-hours | vs oracle "
        "| cost | scale actions | wall s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        metrics = {name: r.metrics for name, r in run.result.runs.items()}
        reactive = metrics.get("reactive")
        oracle = metrics.get("oracle")
        reactive_shortfall = reactive.shortfall_gpu_minutes if reactive else None
        oracle_gpu_hours = oracle.gpu_hours if oracle else None
        for name, m in metrics.items():
            lines.append(
                f"| {run.spec.path.name} | {name} | {m.shortfall_gpu_minutes:,.0f} "
                f"| {_percent(m.shortfall_gpu_minutes, reactive_shortfall)} "
                f"| {m.gpu_hours:,.0f} | {_ratio(m.gpu_hours, oracle_gpu_hours)} "
                f"| {m.cost:,.0f} | {m.scale_actions:,} | {m.wall_seconds:.2f} |"
            )
    return lines


# The layers compared in the paragraph under the policy table, in the order named there.
LAYERS = (
    ("predictive", "peakcast"),
    ("reactive", "reactive"),
    ("combined", "peakcast+reactive"),
    ("combined + fast loop", "peakcast+fastloop"),
)


def layer_table(runs: list[TraceRun]) -> list[str]:
    """Tabulate each trace's under-provisioned GPU-minutes and GPU-hours per layer.

    A layer whose policy was not run on any trace is left out. With none run, nothing is
    written.
    """
    layers = [(label, name) for label, name in LAYERS if any(name in r.result.runs for r in runs)]
    if not layers:
        return []
    lines = [
        "Predictive, reactive and combined on the same traces: under-provisioned GPU-minutes / "
        "GPU-hours of each layer. The fast loop is modelled with one demand sample per minute "
        "(docs/SIMULATOR.md).",
        "",
        "| trace | " + " | ".join(f"{label} ({name})" for label, name in layers) + " |",
        "|---|" + "---:|" * len(layers),
    ]
    for run in runs:
        cells = []
        for _, name in layers:
            found = run.result.runs.get(name)
            if found is None:
                cells.append("not run")
                continue
            metrics = found.metrics
            cells.append(f"{metrics.shortfall_gpu_minutes:,.0f} / {metrics.gpu_hours:,.0f}")
        lines.append(f"| {run.spec.path.name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


@dataclass(frozen=True)
class TargetRow:
    """One peakcast policy's target check on one trace, with its burst-only GPU-hour ratio."""

    trace: str
    check: TargetCheck
    burst_ratio: float | None
    reactive_unserved_share: float | None


def burst_gpu_hours(metrics: RunMetrics, settings: Settings) -> float:
    """Return the GPU-hours of the burst pools alone."""
    burst = {pool.name for pool in settings.pools if pool.kind == "burst"}
    return sum(m.gpu_hours for name, m in metrics.pools.items() if name in burst)


def target_rows(runs: list[TraceRun]) -> list[TargetRow]:
    rows = []
    for run in runs:
        metrics = {name: r.metrics for name, r in run.result.runs.items()}
        oracle = metrics.get("oracle")
        reactive = metrics.get("reactive")
        oracle_burst = burst_gpu_hours(oracle, run.settings) if oracle else 0.0
        unserved = reactive.unserved_share if reactive else None
        for check in target_checks(metrics):
            mine = burst_gpu_hours(metrics[check.policy], run.settings)
            ratio = mine / oracle_burst if oracle_burst > 0 else None
            rows.append(TargetRow(run.spec.path.name, check, ratio, unserved))
    return rows


def target_table(rows: list[TargetRow]) -> list[str]:
    lines = [
        "| trace | policy | under-provisioning vs reactive (≤ 20 %) | GPU-hours vs oracle "
        "(≤ 1.15×) | burst GPU-hours vs oracle | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        check = row.check
        verdict = {None: "not checked", True: "met", False: "**missed**"}[check.met]
        ratio = "–" if check.gpu_hours_ratio is None else f"{check.gpu_hours_ratio:.3f}×"
        burst = "–" if row.burst_ratio is None else f"{row.burst_ratio:.3f}×"
        lines.append(
            f"| {row.trace} | {check.policy} | {_share(check.shortfall_share)} | {ratio} "
            f"| {burst} | {verdict} |"
        )
    return lines


def shortfalls(rows: list[TargetRow]) -> list[str]:
    """Say in words where each peakcast policy misses the target."""
    lines = []
    for row in rows:
        trace, check = row.trace, row.check
        if check.met is not False:
            continue
        parts = []
        if check.shortfall_met is False:
            parts.append(
                f"it is short {_share(check.shortfall_share)} of reactive's under-provisioned "
                "GPU-minutes (target ≤ 20 %)"
            )
        if check.gpu_hours_met is False:
            parts.append(
                f"it bills {check.gpu_hours_ratio:.3f}× the oracle's GPU-hours (target ≤ 1.15×)"
            )
        lines.append(f"- {trace}, {check.policy}: {' and '.join(parts)}.")
    met = [f"{row.trace} ({row.check.policy})" for row in rows if row.check.met]
    if met:
        lines.append(f"- Target met: {', '.join(met)}.")
    easy = sorted(
        {
            row.trace
            for row in rows
            if row.reactive_unserved_share is not None
            and row.reactive_unserved_share < EASY_REACTIVE_UNSERVED
        }
    )
    for trace in easy:
        lines.append(
            f"- {trace}: reactive itself leaves less than {EASY_REACTIVE_UNSERVED:.1%} of the "
            "demand unserved here, so the under-provisioning half of the target says little; "
            "the GPU-hours half decides."
        )
    return lines


@dataclass(frozen=True)
class Timing:
    """The timing run: simulated days, replans and wall seconds."""

    label: str
    days: float
    replans: int
    total_seconds: float
    peakcast_seconds: float
    policies: int


def time_backtest(raw: dict[str, Any], spec: TraceSpec, days: float) -> Timing:
    """Time a backtest of ``days`` simulated days with the default model and every policy."""
    run = run_trace(raw, spec, list(DEFAULT_POLICIES), days, days)
    if isinstance(run, str):
        raise SystemExit(f"timing trace {spec.label} is too short: {run}")
    peakcast = run.result.runs.get("peakcast")
    return Timing(
        label=spec.label,
        days=run.result.minutes / 1440,
        replans=len(run.result.forecasts),
        total_seconds=run.wall_seconds,
        peakcast_seconds=peakcast.metrics.wall_seconds if peakcast else float("nan"),
        policies=len(run.result.runs),
    )


def render(
    runs: list[TraceRun],
    skipped: list[tuple[str, str]],
    timing: Timing | None,
    command: str,
    raw_settings: Settings,
) -> str:
    forecast = raw_settings.forecast
    rows = target_rows(runs)
    burst = burst_nodes_at_peak(raw_settings)
    lines = [
        START_MARKER,
        "## Backtest on the bundled traces",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}.",
        "",
        f"Config: config/peakcast.yaml with the trace as its one workload (pools, lead times, "
        f"policy, simulator and forecast settings unchanged: model {forecast.model}, step "
        f"{forecast.step_seconds // 60} min, refitted every "
        f"{forecast.refit_interval_seconds // 3600} h, replanned every "
        f"{raw_settings.backtest.replan_interval_seconds // 60} min, "
        f"{raw_settings.backtest.warmup_seconds / 86400:g}-day warm-up). Rule per trace: "
        f"throughput_per_replica = trace maximum / ({PEAK_REPLICAS} × target_utilization), so "
        f"the maximum needs {PEAK_REPLICAS} replicas, {burst} of the burst pool's nodes. The "
        "oracle can always serve it; a trace whose normal level is far below its maximum "
        "(spiky series) then runs mostly on the static pool. The Helios trace is in GPUs and is "
        "scaled the same way, so its fleet is a scale model of the cluster. The taxi, ELB and "
        "ASG series are not GPU traces; they are treated as generic demand.",
        "",
        *trace_table(runs),
        "",
        "GPU-hours count every pool, so they include the static pool's GPUs around the clock, "
        "which every policy pays alike; the target table also gives the ratio of burst "
        "GPU-hours alone. Wall s: seconds to step and simulate that policy; peakcast's includes "
        "every forecast (peakcast+reactive and peakcast+fastloop reuse them).",
        "",
        *policy_table(runs),
        "",
        *layer_table(runs),
        "### Target: peakcast ≤ 20 % of reactive's under-provisioned GPU-minutes at ≤ 1.15× the "
        "oracle's GPU-hours",
        "",
        *target_table(rows),
        "",
        *shortfalls(rows),
        "",
    ]
    if timing is not None:
        verdict = "within" if timing.total_seconds < TIMING_TARGET_SECONDS else "**over**"
        lines += [
            f"### {timing.days:g}-day backtest with hourly replanning",
            "",
            f"{timing.label}: {timing.days:g} simulated days, {timing.replans} replans, default "
            f"model ({forecast.model}, refitted daily, updated and re-predicted hourly), "
            f"{timing.policies} policies. Wall time {timing.total_seconds:.1f} s in total, "
            f"{timing.peakcast_seconds:.1f} s of it for peakcast with its forecasts: "
            f"{verdict} the {TIMING_TARGET_SECONDS:g} s target.",
            "",
        ]
    if skipped:
        lines += ["Skipped traces:", "", *[f"- {t}: {reason}" for t, reason in skipped], ""]
    lines.append(END_MARKER)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    raw = base_config(args.config)
    specs = user_specs(args.trace, args.unit, args.missing) if args.trace else list(BUNDLED)
    policies = [name for name in args.policies.split(",") if name]

    runs: list[TraceRun] = []
    skipped: list[tuple[str, str]] = []
    for spec in specs:
        outcome = run_trace(raw, spec, policies, args.min_days, args.max_days)
        if isinstance(outcome, str):
            skipped.append((spec.label, outcome))
            err.print(f"skip {spec.label}: {outcome}")
            continue
        runs.append(outcome)
        days = outcome.result.minutes / 1440
        err.print(f"{spec.label}: {days:.1f} days in {outcome.wall_seconds:.1f} s")

    timing = None
    if args.timing_days > 0 and not args.trace:
        timing = time_backtest(raw, TIMING_TRACE, args.timing_days)
        err.print(f"timing: {timing.total_seconds:.1f} s for {timing.days:g} days")

    command = " ".join(
        ["python bench/backtest_traces.py", *map(shlex.quote, argv or sys.argv[1:])]
    ).strip()
    reference = trace_settings(raw, BUNDLED[0], 1.0, None)
    section = render(runs, skipped, timing, command, reference)
    print(section)
    if not args.no_write:
        write_section(args.output, section, START_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

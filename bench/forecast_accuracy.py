"""Day-ahead forecast accuracy of every model on real traces, by rolling-origin evaluation.

For each trace column long enough (two weekly seasons plus the horizon), every registered
model and ``auto`` are refitted at ``--windows`` daily cutoffs at the end of the trace. Each
fit forecasts the next day, scored against the actuals aggregated to the model step. Results
go to stdout and to the forecast-accuracy section of docs/BENCHMARKS.md.

    .venv/bin/python bench/forecast_accuracy.py
    .venv/bin/python bench/forecast_accuracy.py --trace data/my.csv:requests --missing requests=0
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import shlex
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecaster.aggregate import complete_steps
from forecaster.engine import ForecastEngine
from forecaster.evaluation import Evaluation, rolling_cutoffs, score_window
from forecaster.history import History
from forecaster.models import AUTO, model_names
from forecaster.settings import CsvSourceSettings, ForecastSettings
from forecaster.sources.csv import CsvSource

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sections import write_section

logger = logging.getLogger("bench.forecast_accuracy")

ROOT = Path(__file__).resolve().parent.parent
START_MARKER = "<!-- forecast-accuracy:start -->"
END_MARKER = "<!-- forecast-accuracy:end -->"
DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)

# The main demand column of each bundled trace (see data/README.md). Helios reports its
# outages as zero demand, so zero is declared missing there.
DEFAULT_TRACES = (
    "data/servegen_m-large_10min.csv:req_per_s",
    "data/servegen_m-large_10min.csv:active_clients",
    "data/azure_llm_2023_1s.csv:conv_requests",
    "data/helios_earth_gpu_demand_1min.csv.gz:demand_gpus",
    "data/nab_nyc_taxi_30min_2014-07_2014-11.csv:value",
    "data/nab_elb_request_count_5min.csv:value",
    "data/nab_asg_cpu_utilization_5min.csv:value",
)
DEFAULT_MISSING = ("demand_gpus=0",)


@dataclass(frozen=True)
class TraceSpec:
    """One column of one CSV file, with the values that mean 'no data' in it."""

    path: Path
    column: str
    missing_values: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.path.name}:{self.column}"


@dataclass(frozen=True)
class Row:
    """The scores and costs of one model on one trace."""

    trace: str
    model: str
    chosen: str
    evaluation: Evaluation
    fit_seconds: float
    predict_seconds: float
    peak_traced_mib: float


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trace",
        action="append",
        metavar="PATH:COLUMN",
        help="CSV trace and value column; repeat for more. Default: the bundled traces.",
    )
    parser.add_argument(
        "--missing",
        action="append",
        metavar="COLUMN=VALUE",
        help="A value of COLUMN that means 'no data'; repeat for more. Default: demand_gpus=0.",
    )
    parser.add_argument("--windows", type=int, default=14, help="Daily cutoffs per trace.")
    parser.add_argument(
        "--models",
        default=",".join([*model_names(), AUTO]),
        help="Comma-separated model names to evaluate (default: all and auto).",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "BENCHMARKS.md",
        help="Markdown file whose forecast-accuracy section is replaced.",
    )
    parser.add_argument("--no-write", action="store_true", help="Print only.")
    return parser.parse_args(argv)


def trace_specs(traces: Sequence[str], missing: Sequence[str]) -> list[TraceSpec]:
    """Build trace specs from ``PATH:COLUMN`` and ``COLUMN=VALUE`` arguments."""
    missing_by_column: dict[str, list[float]] = {}
    for item in missing:
        column, _, value = item.partition("=")
        missing_by_column.setdefault(column, []).append(float(value))
    specs = []
    for item in traces:
        path, _, column = item.rpartition(":")
        if not path or not column:
            raise SystemExit(f"--trace {item!r}: expected PATH:COLUMN")
        resolved = Path(path) if Path(path).is_absolute() else ROOT / path
        specs.append(TraceSpec(resolved, column, tuple(missing_by_column.get(column, []))))
    return specs


def load(spec: TraceSpec) -> History:
    settings = CsvSourceSettings(
        kind="csv", path=spec.path, missing_values={spec.column: list(spec.missing_values)}
    )
    return CsvSource(settings).fetch(spec.label, spec.column)


def skip_reason(history: History, settings: ForecastSettings) -> str | None:
    """Return why a trace is too short for the benchmark, or None when it is long enough."""
    needed = 2 * WEEK + pd.Timedelta(seconds=settings.horizon_seconds)
    span = history.end - history.start + history.step
    if span < needed:
        return f"spans {span / DAY:.1f} d, needs {needed / DAY:.0f} d (two weeks + horizon)"
    return None


def run_model(history: History, settings: ForecastSettings, model: str, windows: int) -> Row:
    """Refit ``model`` at each daily cutoff, forecast a day, and time fit and predict."""
    engine = ForecastEngine(settings.model_copy(update={"model": model}))
    h = engine.h
    cutoffs = rolling_cutoffs(history, engine, h=h, n_windows=windows, step_size=h)
    actuals = complete_steps(history, engine.step, settings.aggregation)
    scored, fit_times, predict_times = [], [], []
    for cutoff in cutoffs:
        visible = history.until(cutoff + engine.step - history.step)
        started = time.perf_counter()
        fitted = engine.fit(visible)
        fitted_at = time.perf_counter()
        forecast = fitted.predict(h)
        predict_times.append(time.perf_counter() - fitted_at)
        fit_times.append(fitted_at - started)
        scored.append(score_window(forecast, actuals, engine))

    chosen = sorted({window.forecast.model for window in scored})
    return Row(
        trace=history.name,
        model=model,
        chosen="/".join(chosen),
        evaluation=Evaluation(model, tuple(scored)),
        fit_seconds=statistics.mean(fit_times),
        predict_seconds=statistics.mean(predict_times),
        peak_traced_mib=traced_peak(
            engine, history.until(cutoffs[-1] + engine.step - history.step)
        ),
    )


def traced_peak(engine: ForecastEngine, history: History) -> float:
    """Return the peak memory traced by tracemalloc during one fit and predict, in MiB."""
    tracemalloc.start()
    try:
        engine.fit(history).predict()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def time_default_model(path: Path, column: str, repeats: int = 5) -> tuple[float, int]:
    """Return the median seconds of fit plus predict of the default settings on 30 days.

    The history is the first 30 days of a 5-minute trace, so aggregation is included.
    """
    full = load(TraceSpec(path, column))
    history = full.until(full.start + pd.Timedelta(days=30) - full.step)
    engine = ForecastEngine(ForecastSettings())
    engine.fit(history).predict()  # warm imports and caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        engine.fit(history).predict()
        times.append(time.perf_counter() - started)
    return statistics.median(times), len(history.values)


def render(
    rows: list[Row],
    skipped: list[tuple[str, str]],
    default_timing: tuple[float, int],
    command: str,
    settings: ForecastSettings,
    windows: int,
) -> str:
    level = settings.planning_level
    lines = [
        START_MARKER,
        "## Forecast accuracy (rolling origin, day-ahead)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}; process peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB.",
        "",
        f"Settings: default `ForecastSettings` (model step {settings.step_seconds // 60} min, "
        f"aggregation `{settings.aggregation}`, seasons 1 d and 7 d, horizon 1 d, history "
        f"{settings.history_seconds // 86_400} d, {settings.calibration_windows} calibration "
        f"windows). {windows} daily cutoffs at the end of each trace, refitted at each.",
        "",
        "MASE: mean absolute error over the in-sample MAE of seasonal naive (weekly lag when "
        "the training history holds two weeks). Pinball: loss of the "
        f"P{level * 100:g} quantile, divided by the same scale. Coverage: share of actuals at "
        f"or below P{level * 100:g}. Fit and predict: mean seconds per series and cutoff. "
        "Memory: peak traced by tracemalloc during one fit and predict (Python and NumPy "
        "allocations; Stan's own memory is not traced).",
        "",
        f"| trace | model | MASE | pinball P{level * 100:g} | P{level * 100:g} coverage "
        "| fit s | predict s | memory MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = row.model if row.model != AUTO else f"auto ({row.chosen})"
        lines.append(
            f"| {row.trace} | {name} | {row.evaluation.mase():.3f} "
            f"| {row.evaluation.pinball(level):.3f} | {row.evaluation.coverage(level):.1%} "
            f"| {row.fit_seconds:.3f} | {row.predict_seconds:.4f} | {row.peak_traced_mib:.1f} |"
        )
    lines += target_lines(rows, settings)
    seconds, points = default_timing
    lines += [
        "",
        f"Default model ({settings.model}) on 30 days of 5-minute history ({points} points, "
        f"first 30 days of nab_asg_cpu_utilization_5min.csv): fit and predict including "
        f"aggregation and calibration take {seconds:.3f} s (median of 5).",
        "",
    ]
    if skipped:
        lines.append("Skipped traces:")
        lines.append("")
        lines += [f"- {trace}: {reason}" for trace, reason in skipped]
        lines.append("")
    lines.append(END_MARKER)
    return "\n".join(lines)


def target_lines(rows: list[Row], settings: ForecastSettings) -> list[str]:
    """Check each trace against the accuracy targets; every line says met or missed."""
    level = settings.planning_level
    lines = ["", "Targets per trace:", ""]
    for trace in dict.fromkeys(row.trace for row in rows):
        by_model = {row.model: row for row in rows if row.trace == trace}
        models = {name: row for name, row in by_model.items() if name != AUTO}
        checks = []
        if "seasonal_naive" in models and len(models) > 1:
            best = min(models, key=lambda name: models[name].evaluation.mase())
            naive = models["seasonal_naive"].evaluation.mase()
            met = best != "seasonal_naive" and models[best].evaluation.mase() < naive
            checks.append(
                f"best MASE {best} {models[best].evaluation.mase():.3f} vs seasonal naive "
                f"{naive:.3f}: {'met' if met else 'missed'}"
            )
        if AUTO in by_model and models:
            auto = by_model[AUTO].evaluation.pinball(level)
            median = statistics.median(row.evaluation.pinball(level) for row in models.values())
            met = auto <= median
            checks.append(
                f"auto pinball {auto:.3f} vs median model {median:.3f}: "
                f"{'met' if met else 'missed'}"
            )
        for name in (settings.model, AUTO):
            if name in by_model:
                coverage = by_model[name].evaluation.coverage(level)
                met = 0.87 <= coverage <= 0.93
                checks.append(
                    f"{name} P{level * 100:g} coverage {coverage:.1%} in 87-93 %: "
                    f"{'met' if met else 'missed'}"
                )
        lines.append(f"- {trace}: " + "; ".join(checks))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Prophet 1.5 calls DataFrame.drop(inplace=True), deprecated in pandas 3.1; it still works.
    warnings.filterwarnings("ignore", "The inplace keyword", DeprecationWarning, "prophet")
    args = parse_args(argv)
    specs = trace_specs(args.trace or DEFAULT_TRACES, args.missing or DEFAULT_MISSING)
    models = [name for name in args.models.split(",") if name]
    settings = ForecastSettings()

    rows: list[Row] = []
    skipped: list[tuple[str, str]] = []
    for spec in specs:
        history = load(spec)
        reason = skip_reason(history, settings)
        if reason:
            skipped.append((spec.label, reason))
            print(f"skip {spec.label}: {reason}", file=sys.stderr)
            continue
        for model in models:
            row = run_model(history, settings, model, args.windows)
            rows.append(row)
            print(
                f"{row.trace} {row.model}: MASE {row.evaluation.mase():.3f} "
                f"coverage {row.evaluation.coverage(settings.planning_level):.1%} "
                f"fit {row.fit_seconds:.3f} s",
                file=sys.stderr,
            )

    timing = time_default_model(ROOT / "data" / "nab_asg_cpu_utilization_5min.csv", "value")
    command = " ".join(
        ["python bench/forecast_accuracy.py", *map(shlex.quote, argv or sys.argv[1:])]
    )
    section = render(rows, skipped, timing, command.strip(), settings, args.windows)
    print(section)
    if not args.no_write:
        write_section(args.output, section, START_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

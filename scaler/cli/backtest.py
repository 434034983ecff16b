"""``peakcast backtest``: replay a trace through peakcast and the baseline policies."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from forecaster.errors import ConfigError
from scaler.cli.common import (
    ConfigOption,
    LogFormatOption,
    VerboseOption,
    console,
    error_console,
    parse_timestamp,
    reports_errors,
    setup,
)
from scaler.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from scaler.backtest.runner import BacktestResult
    from scaler.histories import HistoryLoader

# Formats of the result on standard output: the rich table, or the whole report as text.
STDOUT_FORMATS = ("table", "markdown", "json")

# The default of --policies, which --help shows. It copies scaler.backtest.policies.DEFAULT_POLICIES
# because importing that package loads the backtest runner, pandas and numpy.
# tests/scaler/test_cli_startup.py checks that the two are equal.
DEFAULT_POLICIES = (
    "reactive",
    "static",
    "schedule",
    "holt_winters_replicas",
    "oracle",
    "peakcast",
    "peakcast+reactive",
    "peakcast+fastloop",
)


@reports_errors
def backtest(
    policies: str = typer.Option(
        ",".join(DEFAULT_POLICIES),
        "--policies",
        help="Comma-separated policies to compare.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Also write the metrics per policy to this .json file."
    ),
    html: Path | None = typer.Option(
        None,
        "--html",
        help="Also write the full report (plots, tables, capacity plan) to this HTML file.",
    ),
    fmt: str = typer.Option(
        "table",
        "--format",
        "-f",
        help="What is printed on standard output: the table, or the full report as markdown "
        "or json.",
    ),
    start: str | None = typer.Option(
        None,
        "--start",
        help="First time of history to read (ISO 8601, config timezone when no offset). "
        "Default: the start of a CSV trace; for Thanos, --end minus forecast.history_seconds.",
    ),
    end: str | None = typer.Option(
        None,
        "--end",
        help="Last time of history to read. Default: the end of a CSV trace, or now for Thanos.",
    ),
    config: Path | None = ConfigOption,
    verbose: int = VerboseOption,
    log_format: str = LogFormatOption,
) -> None:
    """Replay the traces through peakcast and the baseline policies in the simulator.

    By default every policy runs: the reactive, static, schedule, one-step Holt-Winters and
    oracle baselines, and peakcast alone, with the reactive autoscalers and with its fast loop
    (see --policies). The table compares their under-provisioning, unserved demand, SLO
    attainment, GPU-hours, cost and scale actions.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from scaler.backtest.policies import policy_names
    from scaler.backtest.runner import run_backtest
    from scaler.histories import HistoryLoader
    from scaler.report.from_backtest import backtest_report
    from scaler.report.output import STDOUT, check_format, render, write

    settings = setup(config, verbose, log_format)
    check_format(fmt, allowed=STDOUT_FORMATS)
    names = [name.strip() for name in policies.split(",") if name.strip()]
    unknown = [name for name in names if name not in policy_names()]
    if unknown or not names:
        raise ConfigError(
            "--policies", policies, f"a comma-separated subset of: {', '.join(policy_names())}"
        )

    loader = HistoryLoader(settings)
    first, last = _history_range(settings, loader, start, end)
    histories = {w.name: loader.load(w, first, last) for w in settings.workloads}

    # run_backtest loads the forecasting engine (statsmodels) on first use. Loading it before
    # the clock starts keeps the time printed in the table to the simulation alone.
    import forecaster.engine  # noqa: F401

    began = time.perf_counter()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        # Keep standard output clean when the report is printed there.
        console=console if fmt == "table" else error_console,
        transient=True,
    ) as progress:
        task = progress.add_task("simulating", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = run_backtest(settings, histories, names, progress=tick)
    elapsed = time.perf_counter() - began

    ui = console if fmt == "table" else error_console
    if fmt == "table":
        print_summary(result, settings, elapsed)
    if output is not None:
        output.write_text(json.dumps(summary_records(result), indent=2) + "\n", encoding="utf-8")
        ui.print(f"wrote {escape(str(output))}")
    if html is None and fmt == "table":
        return
    with ui.status("rendering the report..."):
        source = str(config) if config is not None else "embedded config/peakcast.yaml"
        built = backtest_report(settings, result, source=source, wall_seconds=elapsed)
        if html is not None:
            write(render(built, "html"), html)
    if html is not None:
        ui.print(f"wrote {escape(str(html))}")
    if fmt != "table":
        write(render(built, fmt), STDOUT)


def _history_range(
    settings: Settings, loader: HistoryLoader, start: str | None, end: str | None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the span of history to replay: the options, else the traces, else up to now."""
    import pandas as pd

    from scaler.cli.timing import wall_clock_now
    from scaler.histories import trace_span

    span = trace_span(loader, settings.workloads)
    if end is not None:
        last = parse_timestamp(end, settings.timezone, "--end")
    else:
        last = span[1] if span is not None else wall_clock_now()
    if start is not None:
        first = parse_timestamp(start, settings.timezone, "--start")
    else:
        default_span = pd.Timedelta(seconds=settings.forecast.history_seconds)
        first = span[0] if span is not None else last - default_span
    if first >= last:
        raise ConfigError("--start", start or first.isoformat(), "a time before --end")
    return first, last


def summary_records(result: BacktestResult) -> list[dict[str, object]]:
    """Return one JSON-ready record of totals per policy."""
    frame = result.summary()
    records = []
    for name, row in frame.iterrows():
        record: dict[str, object] = {"policy": str(name)}
        record.update({str(key): float(value) for key, value in row.items()})
        records.append(record)
    return records


def print_summary(result: BacktestResult, settings: Settings, elapsed: float) -> None:
    """Print the comparison table, relative to the reactive baseline and the oracle."""
    frame = result.summary()
    days = result.minutes / 1440
    names = ", ".join(w.name for w in settings.workloads)
    table = Table(
        title=escape(
            f"backtest: {days:.1f} days from {result.start:%Y-%m-%d %H:%M} UTC, "
            f"{names} ({elapsed:.1f} s)"
        ),
        title_justify="left",
    )
    headers = (
        "policy",
        "under-prov. GPU-min",
        "vs reactive",
        "unserved",
        "SLO attainment",
        "GPU-hours",
        "vs oracle",
        "cost (config currency)",
        "scale actions",
    )
    for header in headers:
        if header == "policy":
            table.add_column(header, justify="left", no_wrap=True, min_width=17)
        else:
            table.add_column(header, justify="right")
    reactive = frame["shortfall_gpu_minutes"].get("reactive")
    oracle = frame["gpu_hours"].get("oracle")
    for name, row in frame.iterrows():
        table.add_row(
            escape(str(name)),
            f"{row['shortfall_gpu_minutes']:,.0f}",
            _ratio(row["shortfall_gpu_minutes"], reactive),
            f"{row['unserved_share']:.2%}",
            f"{row['slo_attainment']:.1%}",
            f"{row['gpu_hours']:,.0f}",
            _ratio(row["gpu_hours"], oracle, suffix="x"),
            f"{row['cost']:,.0f}",
            f"{row['scale_actions']:,.0f}",
        )
    console.print(table)
    line = miss_line(result, settings)
    if line is not None:
        console.print(escape(line), highlight=False, soft_wrap=True)


def miss_line(result: BacktestResult, settings: Settings) -> str | None:
    """Return the forecast-miss count per workload in one line, or None when peakcast did not run.

    Each count is given with the upper quantile and duration that define a miss.
    """
    from scaler.backtest.misses import compared_level, miss_rule

    if not any(name.startswith("peakcast") for name in result.runs):
        return None
    parts = []
    for workload in settings.workloads:
        name = workload.name
        count = len(result.misses.get(name, ()))
        last = result.forecasts[-1][name] if result.forecasts else None
        level = compared_level(settings, name, last)
        after = miss_rule(settings, name).miss_after_seconds / 60
        parts.append(f"{name} {count} (demand above P{level * 100:g} for {after:g} min)")
    return "forecast misses: " + ", ".join(parts)


def _ratio(value: float, baseline: float | None, suffix: str = "%") -> str:
    if baseline is None or baseline == 0:
        return "-"
    if suffix == "%":
        return f"{100 * value / baseline:.0f}%"
    return f"{value / baseline:.2f}x"

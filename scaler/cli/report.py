"""``peakcast report``: forecast days to weeks ahead and write the capacity-planning report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from forecaster.errors import ConfigError
from scaler.cli.common import (
    ConfigOption,
    LogFormatOption,
    VerboseOption,
    console,
    error_console,
    reports_errors,
    setup,
)
from scaler.settings import Settings

if TYPE_CHECKING:
    from forecaster.forecast import Forecast
    from forecaster.history import History

DAY_SECONDS = 86_400

# The formats listed in the --format help. It copies scaler.report.output.FORMATS because
# importing that module loads the renderers and matplotlib.
# tests/scaler/test_cli_startup.py checks that the two are equal.
REPORT_FORMATS = ("html", "markdown", "json")


@reports_errors
def report(
    at: str | None = typer.Option(
        None,
        "--at",
        help="Forecast from this time (ISO 8601; without an offset it is read in the config's "
        "timezone). Default: the end of a CSV trace, or now for Thanos.",
    ),
    horizon_days: float = typer.Option(
        7.0, "--horizon-days", help="How far ahead to forecast and plan, in days."
    ),
    fmt: str = typer.Option(
        "html", "--format", "-f", help=f"Output format: {', '.join(REPORT_FORMATS)}."
    ),
    output: str | None = typer.Option(
        None,
        "--output",
        "-o",
        help="File to write, or '-' for standard output. Default: peakcast-report.html "
        "(.md, .json) in the current directory.",
    ),
    reserve_quantile: float = typer.Option(
        0.9,
        "--reserve-quantile",
        help="Quantile of the forecast's daily peaks the recommended reserve covers, in (0, 1].",
    ),
    config: Path | None = ConfigOption,
    verbose: int = VerboseOption,
    log_format: str = LogFormatOption,
) -> None:
    """Forecast every workload, find the peak windows and write a capacity plan.

    The plan gives GPUs and nodes per pool and window, the recommended pool bounds and reserve,
    and the cost.
    """
    from forecaster.engine import ForecastEngine
    from scaler.cli.timing import resolve_at
    from scaler.histories import HistoryLoader
    from scaler.report.from_forecast import forecast_report
    from scaler.report.output import STDOUT, SUFFIXES, check_format, render, write

    settings = setup(config, verbose, log_format)
    check_format(fmt)
    if not 0 < reserve_quantile <= 1:
        raise ConfigError("--reserve-quantile", reserve_quantile, "a number in (0, 1]")
    settings = with_horizon(settings, horizon_days)
    target = output if output is not None else f"peakcast-report{SUFFIXES[fmt]}"
    # Keep standard output clean for the report when it goes there.
    ui = error_console if target == STDOUT else console

    loader = HistoryLoader(settings)
    cutoff = resolve_at(at, settings, loader, list(settings.workloads))
    histories: dict[str, History] = {}
    forecasts: dict[str, Forecast] = {}
    engine = ForecastEngine(settings.forecast)
    for workload in settings.workloads:
        with ui.status(f"fitting {settings.forecast.model} for {escape(workload.name)}..."):
            histories[workload.name] = loader.load_until(workload, cutoff)
            forecasts[workload.name] = engine.fit(histories[workload.name]).predict()

    with ui.status("planning capacity and rendering the report..."):
        source = str(config) if config is not None else "embedded config/peakcast.yaml"
        built = forecast_report(
            settings,
            histories,
            forecasts,
            source=source,
            reserve_quantile=reserve_quantile,
            at=cutoff,
        )
        text = render(built, fmt)
    write(text, target)
    if target != STDOUT:
        for sentence in built.summary:
            ui.print(f"- {escape(sentence)}", highlight=False)
        ui.print(f"wrote {escape(target)}")


def with_horizon(settings: Settings, horizon_days: float) -> Settings:
    """Return ``settings`` with the forecast horizon set to ``horizon_days``.

    The quantiles are then calibrated on forecasts of the same length as the report's.
    """
    seconds = round(horizon_days * DAY_SECONDS)
    if seconds < settings.forecast.step_seconds:
        raise ConfigError(
            "--horizon-days",
            horizon_days,
            f"at least one model step ({settings.forecast.step_seconds} s = "
            f"{settings.forecast.step_seconds / DAY_SECONDS:g} days)",
        )
    forecast = settings.forecast.model_copy(update={"horizon_seconds": seconds})
    return settings.model_copy(update={"forecast": forecast})

"""``peakcast forecast``: fit the configured model and print or write the forecast."""

from __future__ import annotations

import json
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
    reports_errors,
    setup,
)

if TYPE_CHECKING:
    from forecaster.forecast import Forecast


@reports_errors
def forecast(
    workload: list[str] = typer.Option(
        [], "--workload", "-w", help="Workload to forecast (repeatable). Default: all."
    ),
    at: str | None = typer.Option(
        None,
        "--at",
        help="Forecast from this time (ISO 8601; without an offset it is read in the config's "
        "timezone). Default: the end of a CSV trace, or now for Thanos.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Also write the forecast to this .csv or .json file."
    ),
    rows: int = typer.Option(
        12,
        "--rows",
        help="Forecast rows printed per workload, spread evenly over the horizon.",
        min=1,
    ),
    config: Path | None = ConfigOption,
    verbose: int = VerboseOption,
    log_format: str = LogFormatOption,
) -> None:
    """Forecast each workload's demand with calibrated quantiles."""
    from forecaster.engine import ForecastEngine
    from scaler.cli.timing import resolve_at
    from scaler.histories import HistoryLoader, select_workloads

    settings = setup(config, verbose, log_format)
    if output is not None and output.suffix not in (".csv", ".json"):
        raise ConfigError("--output", str(output), "a path ending in .csv or .json")

    loader = HistoryLoader(settings)
    workloads = select_workloads(settings, workload)
    cutoff = resolve_at(at, settings, loader, workloads)

    results: list[Forecast] = []
    for selected in workloads:
        with console.status(f"fitting {settings.forecast.model} for {escape(selected.name)}..."):
            history = loader.load_until(selected, cutoff)
            result = ForecastEngine(settings.forecast).fit(history).predict()
        results.append(result)
        _print_forecast(result, selected.demand.unit, history.coverage, rows)

    if output is not None:
        _write(results, output)
        console.print(f"wrote {escape(str(output))}")


def _print_forecast(result: Forecast, unit: str, coverage: float, rows: int) -> None:
    frame = result.frame()
    table = Table(
        title=escape(
            f"{result.name}: demand in {unit}, model {result.model}, "
            f"cutoff {result.cutoff.isoformat()}, history coverage {coverage:.1%}"
        ),
        title_justify="left",
    )
    for column in frame.columns:
        table.add_column(escape(str(column)), justify="left" if column == "ds" else "right")
    stride = max(1, len(frame) // rows)
    for _, row in frame.iloc[::stride].head(rows).iterrows():
        cells = [row.iloc[0].strftime("%Y-%m-%d %H:%M")]
        cells += [f"{value:,.1f}" for value in row.iloc[1:]]
        table.add_row(*cells)
    console.print(table)
    for note in result.notes:
        console.print(f"  note: {escape(note)}")


def _write(results: list[Forecast], output: Path) -> None:
    import pandas as pd

    frames = []
    for result in results:
        frame = result.frame()
        frame.insert(0, "unique_id", result.name)
        frame.insert(1, "cutoff", result.cutoff)
        frame.insert(2, "model", result.model)
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    if output.suffix == ".csv":
        combined.to_csv(output, index=False)
    else:
        records = json.loads(combined.to_json(orient="records", date_format="iso"))
        output.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")

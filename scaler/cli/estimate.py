"""``peakcast estimate-capacity``: the throughput one replica sustains at its SLO, from a CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from forecaster.errors import ConfigError
from forecaster.settings import CsvSourceSettings
from scaler.cli.common import (
    ConfigOption,
    LogFormatOption,
    VerboseOption,
    console,
    parse_timestamp,
    reports_errors,
    setup,
)
from scaler.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from scaler.capacity_estimate import CapacityEstimate


@dataclass(frozen=True)
class _Columns:
    time: str
    demand: str
    replicas: str
    latency: str
    version: str | None


@dataclass(frozen=True)
class _Defaults:
    """Option defaults, from a workload's capacity_measurement when --workload is given."""

    columns: _Columns = _Columns("timestamp", "demand", "replicas", "latency_p95", None)
    slo_seconds: float | None = None
    bootstrap_samples: int = 200
    min_samples: int = 100


@reports_errors
def estimate_capacity(
    csv: Path = typer.Argument(..., help="CSV with one row per step, oldest first."),
    slo_seconds: float | None = typer.Option(
        None, "--slo-seconds", help="SLO on p95 latency, in seconds (or from --workload)."
    ),
    workload: str | None = typer.Option(
        None,
        "--workload",
        help="Read the SLO, bootstrap settings and (for a CSV source) the column names from "
        "this workload's capacity_measurement in the config, and compare with its "
        "throughput_per_replica.",
    ),
    time_column: str | None = typer.Option(None, "--time-column", help="Default: timestamp."),
    demand_column: str | None = typer.Option(
        None,
        "--demand-column",
        help="Arrivals per second (queued and rejected too). Default: demand.",
    ),
    replicas_column: str | None = typer.Option(
        None, "--replicas-column", help="Serving replicas. Default: replicas."
    ),
    latency_column: str | None = typer.Option(
        None, "--latency-column", help="p95 latency in seconds. Default: latency_p95."
    ),
    version_column: str | None = typer.Option(
        None,
        "--version-column",
        help="Model version per row; only rows after the newest change are used.",
    ),
    since: str | None = typer.Option(
        None, "--since", help="Use only rows from this time on (ISO 8601), e.g. a model rollout."
    ),
    level: float = typer.Option(0.9, "--level", help="Coverage of the bootstrap interval."),
    bootstrap: int | None = typer.Option(
        None, "--bootstrap", help="Bootstrap resamples. Default: 200, or from --workload."
    ),
    min_samples: int | None = typer.Option(
        None, "--min-samples", help="Usable rows needed. Default: 100, or from --workload."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap's random numbers."),
    config: Path | None = ConfigOption,
    verbose: int = VerboseOption,
    log_format: str = LogFormatOption,
) -> None:
    """Estimate the per-replica load at which p95 latency reaches the SLO, with an interval.

    Fits latency against demand / replicas with a two-segment line (flat, then rising past a
    knee) and reports where the fit reaches the SLO; a moving-block bootstrap gives the
    interval. Demand must count arrivals, because completions stop growing at capacity.
    """
    from scaler.capacity_estimate import estimate_newest, version_segments

    settings = setup(config, verbose, log_format)
    defaults = _defaults(settings, workload)
    columns = _Columns(
        time=time_column or defaults.columns.time,
        demand=demand_column or defaults.columns.demand,
        replicas=replicas_column or defaults.columns.replicas,
        latency=latency_column or defaults.columns.latency,
        version=version_column or defaults.columns.version,
    )
    slo = slo_seconds or defaults.slo_seconds
    if slo is None:
        raise ConfigError("--slo-seconds", None, "an SLO in seconds, or --workload with one")
    frame = _read(csv, columns, settings.timezone)
    cut = parse_timestamp(since, settings.timezone, "--since") if since else None
    result = estimate_newest(
        frame,
        slo,
        demand=columns.demand,
        replicas=columns.replicas,
        latency=columns.latency,
        version=columns.version,
        since=cut,
        level=level,
        bootstrap_samples=bootstrap or defaults.bootstrap_samples,
        min_samples=min_samples or defaults.min_samples,
        seed=seed,
    )
    versions = len(version_segments(frame[columns.version])) if columns.version else 1
    console.print(_table(result, versions, settings, workload))
    if result.extrapolated:
        console.print(
            "[yellow]note[/]: the history never reaches the SLO; the estimate extrapolates "
            f"the fit beyond the highest per-replica load seen ({result.max_observed_load:.4g})."
        )


def _defaults(settings: Settings, workload: str | None) -> _Defaults:
    if workload is None:
        return _Defaults()
    try:
        found = settings.workload(workload)
    except KeyError:
        names = ", ".join(w.name for w in settings.workloads)
        raise ConfigError("--workload", workload, f"a workload of the config ({names})") from None
    measurement = found.capacity_measurement
    if measurement is None:
        raise ConfigError("--workload", workload, "a workload with a capacity_measurement section")
    columns = _Defaults().columns
    source = settings.sources.get(measurement.source)
    if isinstance(source, CsvSourceSettings):
        columns = _Columns(
            time=source.timestamp_column,
            demand=found.demand.series,
            replicas=measurement.replicas_series,
            latency=measurement.latency_p95_series,
            version=measurement.version_series,
        )
    return _Defaults(
        columns,
        measurement.slo_p95_latency_seconds,
        measurement.bootstrap_samples,
        measurement.min_samples,
    )


def _read(path: Path, columns: _Columns, zone: str) -> pd.DataFrame:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ConfigError("CSV", str(path), "an existing CSV file") from None
    except (OSError, ValueError) as error:
        raise ConfigError("CSV", str(path), f"a readable CSV file ({error})") from error
    required = {
        "--demand-column": columns.demand,
        "--replicas-column": columns.replicas,
        "--latency-column": columns.latency,
    }
    if columns.version:
        required["--version-column"] = columns.version
    for option, name in required.items():
        if name not in frame.columns:
            raise ConfigError(option, name, f"a column of the CSV ({', '.join(frame.columns)})")
    if columns.time in frame.columns:
        stamps = pd.to_datetime(frame[columns.time])
        if stamps.dt.tz is None:
            stamps = stamps.dt.tz_localize(zone)
        frame = frame.set_index(pd.DatetimeIndex(stamps.dt.tz_convert("UTC"))).sort_index()
    return frame


def _table(
    result: CapacityEstimate, versions: int, settings: Settings, workload: str | None
) -> Table:
    table = Table(title="throughput per replica at the SLO", title_justify="left")
    for column in ("quantity", "value"):
        table.add_column(column)
    table.add_row("estimate", f"{result.throughput_per_replica:.4g} per replica")
    table.add_row(
        f"{result.level:.0%} interval", f"{result.lower:.4g} to {result.upper:.4g} (bootstrap)"
    )
    table.add_row("knee of the latency curve", f"{result.knee:.4g} per replica")
    table.add_row("SLO (p95 latency)", f"{result.slo_seconds:g} s")
    table.add_row("rows used", str(result.samples))
    table.add_row("highest load seen", f"{result.max_observed_load:.4g} per replica")
    if result.version is not None:
        table.add_row("model version", f"{escape(str(result.version))} (newest of {versions})")
    if result.since is not None:
        table.add_row("from", result.since.isoformat())
    if result.bootstrap_failures:
        table.add_row("bootstrap refits without a crossing", str(result.bootstrap_failures))
    if workload is not None:
        configured = settings.workload(workload).capacity.throughput_per_replica
        change = result.throughput_per_replica / configured - 1
        table.add_row("configured throughput_per_replica", f"{configured:g} ({change:+.0%})")
    return table

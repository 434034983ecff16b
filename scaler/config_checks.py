"""Checks of a loaded config against what it points to: trace files, columns, PromQL.

Loading validates the shape of the config. These checks go one step further, without
touching a cluster or sending a query. Every CSV trace must be readable and have the column
a workload names. Every Thanos demand query, and every live-signal query, must pass the
PromQL rules: rate per series before sum, and a counter range of at least four scrape
intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

from forecaster.errors import ConfigError, DataError
from forecaster.promql import validate_query
from forecaster.settings import CsvSourceSettings, ThanosSourceSettings
from forecaster.sources.csv import CsvSource
from scaler.config_loader import ConfigErrors
from scaler.settings import Settings
from scaler.signals.saturation import saturation_query


@dataclass(frozen=True)
class CheckSummary:
    """Counts of what was checked: trace files read and PromQL queries validated."""

    files: int
    queries: int


def check_sources(settings: Settings) -> CheckSummary:
    """Raise ConfigErrors listing every unreadable trace, unknown column or invalid query."""
    errors: list[ConfigError] = []
    csv_sources: dict[str, CsvSource] = {}
    queries = 0
    for index, workload in enumerate(settings.workloads):
        key = f"workloads[{index}].demand.series"
        source_settings = settings.sources[workload.demand.source]
        if isinstance(source_settings, CsvSourceSettings):
            name = workload.demand.source
            source = csv_sources.setdefault(
                name, CsvSource(source_settings, key_prefix=f"sources.{name}")
            )
            try:
                columns = source.columns()
            except ConfigError as error:
                errors.append(error)
                continue
            except DataError as error:
                errors.append(
                    ConfigError(f"sources.{name}.path", str(source_settings.path), str(error))
                )
                continue
            if workload.demand.series not in columns:
                errors.append(
                    ConfigError(
                        key, workload.demand.series, f"a column of the trace: {', '.join(columns)}"
                    )
                )
        elif isinstance(source_settings, ThanosSourceSettings):
            queries += 1
            try:
                validate_query(
                    workload.demand.series,
                    scrape_interval_seconds=source_settings.scrape_interval_seconds,
                    key=key,
                )
            except ConfigError as error:
                errors.append(error)
    queries += _check_signal_queries(settings, errors)
    if errors:
        raise ConfigErrors(_unique(errors))
    return CheckSummary(files=len(csv_sources), queries=queries)


def _check_signal_queries(settings: Settings, errors: list[ConfigError]) -> int:
    """Check the PromQL of every saturation signal and every own demand-above-forecast query."""
    checked = 0
    for index, workload in enumerate(settings.workloads):
        signals = workload.signals
        if signals is None:
            continue
        prefix = f"workloads[{index}].signals"
        found: list[tuple[str, str, str]] = []
        for number, saturation in enumerate(signals.saturation):
            source = settings.sources[saturation.source]
            scrape = getattr(source, "scrape_interval_seconds", 60)
            query = saturation_query(saturation, scrape)
            found.append((f"{prefix}.saturation[{number}].query", query, saturation.source))
        demand = signals.demand_above_forecast
        if demand is not None and demand.query:
            source_name = demand.source or workload.demand.source
            found.append((f"{prefix}.demand_above_forecast.query", demand.query, source_name))
        for key, query, source_name in found:
            source = settings.sources[source_name]
            if not isinstance(source, ThanosSourceSettings):
                continue
            checked += 1
            try:
                validate_query(
                    query, scrape_interval_seconds=source.scrape_interval_seconds, key=key
                )
            except ConfigError as error:
                errors.append(error)
    return checked


def _unique(errors: list[ConfigError]) -> list[ConfigError]:
    seen: set[str] = set()
    unique = []
    for error in errors:
        if str(error) not in seen:
            seen.add(str(error))
            unique.append(error)
    return unique

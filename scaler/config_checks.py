"""Checks of a loaded config against what it points to: trace files, columns, PromQL.

Loading validates the shape of the config. These checks go one step further, without
touching a cluster or sending a query. Every CSV trace must be readable and have the column
a workload names. Every Thanos demand query must pass the PromQL rules: rate per series
before sum, and a counter range of at least four scrape intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

from forecaster.errors import ConfigError, DataError
from forecaster.promql import validate_query
from forecaster.settings import CsvSourceSettings, ThanosSourceSettings
from forecaster.sources.csv import CsvSource
from scaler.config_loader import ConfigErrors
from scaler.settings import Settings


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
    if errors:
        raise ConfigErrors(_unique(errors))
    return CheckSummary(files=len(csv_sources), queries=queries)


def _unique(errors: list[ConfigError]) -> list[ConfigError]:
    seen: set[str] = set()
    unique = []
    for error in errors:
        if str(error) not in seen:
            seen.add(str(error))
            unique.append(error)
    return unique

"""Build and check the PromQL that reads demand history.

Two kinds of metric need two query shapes:

- a counter (requests, tokens) is turned into a per-second rate of each series first and
  summed afterwards: ``sum(rate(x[4m]))``. Summing raw counters first (``rate(sum(x)[4m:])``)
  reads one pod's restart as a reset of the whole sum and produces a spike, so
  ``validate_query`` rejects that form.
- a gauge (GPU utilisation, queue length) is averaged or maxed over a window equal to the
  step, so every sample between two grid points counts once.

A counter range must contain at least two samples even when one scrape is missed or late,
so it is at least 4 scrape intervals. On downsampled Thanos data it must also span about 3
points of the source resolution (15m for 5m data, 3h for 1h data), because rate() returns
nothing otherwise. ``widen_ranges`` raises short ranges to that minimum for each chunk.

Prometheus labels the value of a range function at t with the window (t - range, t], so a
grid point summarises the interval that ends at it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from forecaster.errors import ConfigError
from forecaster.promql_scan import (
    COUNTER_FUNCTIONS,
    PromQLSyntaxError,
    QueryScan,
    format_duration,
    scan,
)

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

SCRAPES_PER_COUNTER_RANGE = 4
RESOLUTION_POINTS_PER_COUNTER_RANGE = 3

Aggregation = Literal["sum", "avg", "max", "min"]
GaugeFunction = Literal["avg", "max", "min"]


def minimum_counter_range_seconds(scrape_interval_seconds: int, resolution_seconds: int = 0) -> int:
    """Return the shortest range a counter function may use, in whole seconds.

    It is 4 scrape intervals, or 3 source-resolution steps when the data are downsampled,
    whichever is longer.
    """
    if scrape_interval_seconds <= 0:
        raise ConfigError("scrape_interval_seconds", scrape_interval_seconds, "a positive number")
    return max(
        SCRAPES_PER_COUNTER_RANGE * scrape_interval_seconds,
        RESOLUTION_POINTS_PER_COUNTER_RANGE * resolution_seconds,
    )


def selector(
    metric: str | Sequence[str],
    matchers: Mapping[str, str] | None = None,
    regex_matchers: Mapping[str, str] | None = None,
) -> str:
    """Build a vector selector with exact and regular-expression label matchers.

    Several metric names select any of them, which keeps a query working across a rename
    (``vllm:gpu_cache_usage_perc`` became ``vllm:kv_cache_usage_perc``, for example).
    """
    names = [metric] if isinstance(metric, str) else list(metric)
    if not names:
        raise ConfigError("metric", names, "at least one metric name")
    for name in names:
        if not METRIC_NAME.fullmatch(name):
            raise ConfigError("metric", name, "a metric name matching [a-zA-Z_:][a-zA-Z0-9_:]*")

    parts = []
    for label, value in (matchers or {}).items():
        parts.append(f"{_label(label)}={_quote(value)}")
    for label, pattern in (regex_matchers or {}).items():
        parts.append(f"{_label(label)}=~{_quote(pattern)}")

    if len(names) == 1:
        return f"{names[0]}{{{','.join(parts)}}}" if parts else names[0]
    parts.insert(0, f"__name__=~{_quote('|'.join(names))}")
    return "{" + ",".join(parts) + "}"


def counter_rate(
    metric: str | Sequence[str],
    *,
    scrape_interval_seconds: int,
    by: Sequence[str] = (),
    matchers: Mapping[str, str] | None = None,
    regex_matchers: Mapping[str, str] | None = None,
    resolution_seconds: int = 0,
    range_seconds: int | None = None,
    aggregation: Aggregation = "sum",
) -> str:
    """Build the per-second rate of a counter: rate() of each series, then the aggregation.

    The range defaults to ``minimum_counter_range_seconds``. A shorter ``range_seconds``
    raises ConfigError, because it would read as no traffic instead of low traffic.
    ``resolution_seconds`` is the source resolution of downsampled data (300 or 3600).
    """
    minimum = minimum_counter_range_seconds(scrape_interval_seconds, resolution_seconds)
    if range_seconds is None:
        range_seconds = minimum
    elif range_seconds < minimum:
        raise ConfigError(
            "range_seconds",
            range_seconds,
            f"at least {minimum} s: 4 scrape intervals of {scrape_interval_seconds} s"
            + (
                f" and 3 source-resolution steps of {resolution_seconds} s"
                if resolution_seconds
                else ""
            ),
        )
    inner = f"rate({selector(metric, matchers, regex_matchers)}[{format_duration(range_seconds)}])"
    return _aggregate(aggregation, by, inner)


def gauge_over_time(
    metric: str | Sequence[str],
    *,
    step_seconds: int,
    by: Sequence[str] = (),
    matchers: Mapping[str, str] | None = None,
    regex_matchers: Mapping[str, str] | None = None,
    function: GaugeFunction = "avg",
    aggregation: Aggregation = "sum",
) -> str:
    """Build a gauge summarised over a window equal to the step, then aggregated.

    ``function`` picks avg_over_time (mean level) or max_over_time (peaks inside a step).
    """
    if step_seconds <= 0:
        raise ConfigError("step_seconds", step_seconds, "a positive number of seconds")
    if function not in ("avg", "max", "min"):
        raise ConfigError("function", function, "one of: avg, max, min")
    window = format_duration(step_seconds)
    inner = f"{function}_over_time({selector(metric, matchers, regex_matchers)}[{window}])"
    return _aggregate(aggregation, by, inner)


def validate_query(
    query: str, *, scrape_interval_seconds: int | None = None, key: str = "series"
) -> QueryScan:
    """Check a demand query before it is sent, and return what the scanner found.

    Raises ConfigError naming ``key`` and the query in four cases: the query is empty or
    unreadable, or it returns a range vector instead of one value per step. A counter
    function reads an aggregate (the sum-then-rate form), or a counter range is shorter than
    4 scrape intervals.
    """
    if not query.strip():
        raise ConfigError(key, query, "a PromQL expression")
    try:
        found = scan(query)
    except PromQLSyntaxError as error:
        raise ConfigError(key, query, f"a readable PromQL expression ({error})") from None

    for problem in found.counters_of_aggregates:
        raise ConfigError(
            key,
            query,
            f"{problem.function}() must read each counter series before any sum, because "
            f"{problem.reason}; write sum({problem.function}(metric[range])) instead of "
            f"{problem.function}(sum(metric)[range:])",
        )
    for found_range in found.ranges:
        if found_range.function is None:
            raise ConfigError(
                key,
                query,
                "an expression with one value per step; a range such as "
                f"[{query[found_range.start : found_range.end]}] must be the argument of a "
                "function such as rate() or avg_over_time()",
            )
    if scrape_interval_seconds is not None:
        _check_counter_ranges(query, found, scrape_interval_seconds, key)
    return found


def _check_counter_ranges(
    query: str, found: QueryScan, scrape_interval_seconds: int, key: str
) -> None:
    minimum = minimum_counter_range_seconds(scrape_interval_seconds)
    for found_range in found.ranges:
        if found_range.function in COUNTER_FUNCTIONS and found_range.seconds < minimum:
            text = query[found_range.start : found_range.end]
            raise ConfigError(
                key,
                query,
                f"a {found_range.function}() range of at least {format_duration(minimum)} "
                f"(4 scrape intervals of {scrape_interval_seconds} s); [{text}] often holds "
                "fewer than two samples, which reads as no traffic",
            )


def widen_ranges(query: str, resolution_seconds: int) -> tuple[str, tuple[str, ...]]:
    """Raise the ranges of ``query`` that are too short for data at ``resolution_seconds``.

    A counter function gets at least 3 resolution steps and a ``*_over_time`` function at
    least one, so each window contains enough downsampled points. Returns the query and one
    note per widened range; raw data (resolution 0) is returned unchanged.
    """
    if resolution_seconds <= 0:
        return query, ()
    pieces: list[str] = []
    notes: list[str] = []
    position = 0
    for found_range in scan(query).ranges:
        minimum = _minimum_range(found_range.function, resolution_seconds)
        if found_range.is_subquery or minimum is None or found_range.seconds >= minimum:
            continue
        old = query[found_range.start : found_range.end]
        new = format_duration(minimum)
        pieces.append(query[position : found_range.start])
        pieces.append(new)
        position = found_range.end
        notes.append(
            f"{found_range.function}() range widened from {old} to {new} for data at "
            f"{format_duration(resolution_seconds)} resolution"
        )
    pieces.append(query[position:])
    return "".join(pieces), tuple(notes)


def longest_range_seconds(query: str) -> float:
    """Return the longest range or subquery range in ``query``, 0 when it has none."""
    return max((found.seconds for found in scan(query).ranges), default=0.0)


def _minimum_range(function: str | None, resolution_seconds: int) -> int | None:
    if function in COUNTER_FUNCTIONS:
        return RESOLUTION_POINTS_PER_COUNTER_RANGE * resolution_seconds
    if function is not None and function.endswith("_over_time"):
        return resolution_seconds
    return None


def _aggregate(aggregation: str, by: Sequence[str], inner: str) -> str:
    if aggregation not in ("sum", "avg", "max", "min"):
        raise ConfigError("aggregation", aggregation, "one of: sum, avg, max, min")
    if not by:
        return f"{aggregation}({inner})"
    labels = ", ".join(_label(label) for label in by)
    return f"{aggregation} by ({labels}) ({inner})"


def _label(name: str) -> str:
    if not LABEL_NAME.fullmatch(name):
        raise ConfigError("label", name, "a label name matching [a-zA-Z_][a-zA-Z0-9_]*")
    return name


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'

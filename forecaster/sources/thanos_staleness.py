"""Find grid points that only repeat an old sample of a series that stopped.

A series can stop without a staleness marker: an exporter crash, a Prometheus restart, or
data from a sidecar or receiver. The server then keeps returning its last sample for the
lookback delta (5 min by default), and a rate() keeps returning values for its range. A dead
source looks like a flat, healthy metric.

The check runs at the end of every run of values (before a gap, and at the end of the
grid). For each vector selector of the query it asks the server for
``max by (<labels of the result>) (timestamp(<selector>))`` over that window: the time of
the newest real sample behind each grid point. A point whose newest sample is at least the
threshold old is stale and becomes missing. So is a point with no sample behind it at all,
where that can be told apart from sparse data (raw resolution, scrapes within the lookback).

NOTE: a selector is probed without its ``offset`` or ``@`` modifier, so a query that reads
shifted data is judged by the freshness of the current data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecaster.sources.thanos_chunks import Chunk, Resolution
from forecaster.sources.thanos_series import (
    METRIC_NAME_LABEL,
    GridSeries,
    LabelSet,
    place_chunk,
)


@dataclass(frozen=True)
class Window:
    """Grid positions ``first`` to ``last``, both included."""

    first: int
    last: int

    @property
    def points(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class WindowPlan:
    """The windows to check, most recent last, and how many run ends were left unchecked."""

    windows: tuple[Window, ...]
    unchecked: int


def window_points(step_seconds: int, lookback_seconds: float, longest_range_seconds: float) -> int:
    """Return how many steps before a run end can repeat an old sample."""
    return math.ceil(max(lookback_seconds, longest_range_seconds) / step_seconds)


def plan_windows(values: Iterable[np.ndarray], span_points: int, limit: int) -> WindowPlan:
    """Return merged windows ending at each run end of any series, keeping the newest ``limit``."""
    intervals: list[tuple[int, int]] = []
    for series in values:
        present = ~np.isnan(series)
        if not present.any():
            continue
        following = np.append(present[1:], False)
        for end in np.flatnonzero(present & ~following).tolist():
            intervals.append((max(0, end - span_points), end))

    merged: list[Window] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1].last + 1:
            merged[-1] = Window(merged[-1].first, max(merged[-1].last, last))
        else:
            merged.append(Window(first, last))
    kept = merged[-limit:]
    return WindowPlan(tuple(kept), len(merged) - len(kept))


def probe_labels(series: Iterable[GridSeries]) -> list[str]:
    """Return the label names to group the timestamp probe by, those of the result series."""
    names: set[str] = set()
    for item in series:
        names.update(item.labels)
    names.discard(METRIC_NAME_LABEL)
    return sorted(names)


def probe_query(selector: str, labels: Sequence[str]) -> str:
    """Build the query for the newest sample time behind each grid point."""
    return f"max by ({', '.join(labels)}) (timestamp({selector}))"


def window_chunk(grid: pd.DatetimeIndex, window: Window, resolution: Resolution) -> Chunk:
    """Describe ``window`` as a chunk whose positions start at 0, for ``place_chunk``."""
    return Chunk(0, 0, window.points, grid[window.first], grid[window.last], resolution)


def newest_sample_times(
    probe_results: Sequence[list[dict[str, Any]]],
    chunk: Chunk,
    step_seconds: int,
    labels: Sequence[str],
    series: dict[LabelSet, GridSeries],
) -> dict[LabelSet, np.ndarray]:
    """Return, per result series, the newest sample time (epoch seconds) at each window point.

    ``probe_results`` contains one probe response per selector. The newest time over all
    selectors counts, so a query that reads several metrics is stale only when all of them
    stopped. A result series whose labels match no probe series gets the newest time of
    any probe series. NaN means no sample within the lookback.
    """
    newest = {key: np.full(chunk.points, np.nan) for key in series}
    for result in probe_results:
        probes: dict[LabelSet, GridSeries] = {}
        place_chunk(result, chunk, step_seconds, chunk.points, probes)
        by_group = {_group(item.labels, labels): item.values for item in probes.values()}
        fallback = _newest_of(list(by_group.values()), chunk.points)
        for key, item in series.items():
            times = by_group.get(_group(item.labels, labels), fallback)
            newest[key] = np.fmax(newest[key], times)
    return newest


def stale_positions(
    newest: np.ndarray,
    values: np.ndarray,
    grid_seconds: np.ndarray,
    threshold_seconds: np.ndarray,
    unknown_is_stale: np.ndarray,
) -> np.ndarray:
    """Return a mask of window points that have a value but no fresh sample behind it.

    ``unknown_is_stale`` says, per point, whether a point without any sample time counts as
    stale or is left alone.
    """
    with np.errstate(invalid="ignore"):
        old = (grid_seconds - newest) >= threshold_seconds
    unknown = np.isnan(newest) & unknown_is_stale
    return ~np.isnan(values) & (unknown | old)


def _group(labels: dict[str, str], names: Sequence[str]) -> tuple[str, ...]:
    return tuple(labels.get(name, "") for name in names)


def _newest_of(arrays: list[np.ndarray], points: int) -> np.ndarray:
    newest = np.full(points, np.nan)
    for array in arrays:
        newest = np.fmax(newest, array)
    return newest

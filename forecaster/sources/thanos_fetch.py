"""Fetch a PromQL range as a frame of series on the UTC grid, classifying what came back.

The steps: validate the query and split the grid into chunks. Send the chunks concurrently,
with the Thanos parameters for each chunk's age. Place the samples on the grid, merge
replicas, and blank the points that only repeat the last sample of a stopped series. The frame has
one column per series and NaN for every missing point; nothing is filled with zero.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError
from forecaster.history import empty_grid
from forecaster.promql import longest_range_seconds, validate_query, widen_ranges
from forecaster.settings import ThanosSourceSettings
from forecaster.sources.thanos_chunks import (
    Chunk,
    Resolution,
    ResolutionAges,
    plan_chunks,
    resolution_per_point,
)
from forecaster.sources.thanos_http import QueryClient, RangeRequest, RangeResponse
from forecaster.sources.thanos_report import ChunkReport, FetchReport, SeriesReport
from forecaster.sources.thanos_series import (
    GridSeries,
    LabelSet,
    PlacementCounts,
    ReplicaMerge,
    format_labels,
    merge_replicas,
    place_chunk,
)
from forecaster.sources.thanos_staleness import (
    Window,
    newest_sample_times,
    plan_windows,
    probe_labels,
    probe_query,
    stale_positions,
    window_chunk,
    window_points,
)
from forecaster.timegrid import as_utc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Plan:
    """One fetch: the grid, its chunks and the query sent for each chunk."""

    name: str
    query: str
    key: str
    grid: pd.DatetimeIndex
    step_seconds: int
    chunks: list[Chunk]
    chunk_queries: list[str]
    notes: tuple[str, ...]
    selectors: tuple[str, ...]


@dataclass
class _Staleness:
    stale: dict[LabelSet, np.ndarray]
    checked: int = 0
    unchecked: int = 0
    warnings: tuple[str, ...] = ()


class FrameFetcher:
    """Runs range fetches for one source. ``clock`` returns the current UTC time."""

    def __init__(
        self,
        settings: ThanosSourceSettings,
        client: QueryClient,
        clock: Callable[[], pd.Timestamp],
    ) -> None:
        self._settings = settings
        self._client = client
        self._clock = clock
        self._ignored = [re.compile(pattern) for pattern in settings.ignored_warning_patterns]

    def fetch(
        self,
        name: str,
        query: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: pd.Timedelta | None,
    ) -> tuple[pd.DataFrame, FetchReport]:
        """Return one column per result series over the grid in [start, end], and the report.

        Raises ConfigError for an invalid query, range or step, and the errors of
        ``QueryClient.query_range``. Warnings and empty results do not raise here: the
        report states them.
        """
        started = time.monotonic()
        plan = self._plan(name, query, start, end, step)
        if not plan.chunks:
            report = self._report(plan, [], PlacementCounts(), ReplicaMerge({}), None, started)
            return pd.DataFrame(index=plan.grid, dtype=float), report

        responses = self._run([self._chunk_request(plan, chunk) for chunk in plan.chunks])
        series: dict[LabelSet, GridSeries] = {}
        counts = PlacementCounts()
        chunk_reports = []
        for chunk, chunk_query, response in zip(
            plan.chunks, plan.chunk_queries, responses, strict=True
        ):
            placed = place_chunk(response.result, chunk, plan.step_seconds, len(plan.grid), series)
            counts.add(placed)
            chunk_reports.append(_chunk_report(chunk, chunk_query, response, placed))

        merged = merge_replicas(series, self._settings.replica_labels)
        staleness = self._check_staleness(plan, merged.series)
        report = self._report(plan, chunk_reports, counts, merged, staleness, started)
        frame = pd.DataFrame(
            {format_labels(item.labels): item.values for item in merged.series.values()},
            index=plan.grid,
            dtype=float,
        )
        logger.debug("%s: fetched %s", name, report.summary())
        return frame, report

    def _plan(
        self,
        name: str,
        query: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: pd.Timedelta | None,
    ) -> _Plan:
        key = f"workloads[{name}].demand.series"
        step_seconds = _step_seconds(step)
        start_utc, end_utc = as_utc(start), as_utc(end)
        if end_utc < start_utc:
            raise ConfigError("end", end_utc.isoformat(), f"a time not before {start_utc}")
        found = validate_query(
            query, scrape_interval_seconds=self._settings.scrape_interval_seconds, key=key
        )
        grid = empty_grid(start_utc, end_utc, pd.Timedelta(seconds=step_seconds)).as_unit("ns")
        ages = ResolutionAges(
            self._settings.raw_resolution_max_age_seconds,
            self._settings.five_minute_resolution_max_age_seconds,
        )
        chunks = plan_chunks(grid, self._clock(), self._settings.max_points_per_request, ages)
        chunk_queries: list[str] = []
        notes: list[str] = []
        for chunk in chunks:
            chunk_query, widened = widen_ranges(query, chunk.resolution.seconds)
            chunk_queries.append(chunk_query)
            notes.extend(note for note in widened if note not in notes)
        selectors = tuple(dict.fromkeys(found.selectors))
        return _Plan(
            name, query, key, grid, step_seconds, chunks, chunk_queries, tuple(notes), selectors
        )

    def _chunk_request(self, plan: _Plan, chunk: Chunk) -> RangeRequest:
        return RangeRequest(
            query=plan.chunk_queries[chunk.index],
            start=chunk.start,
            end=chunk.end,
            step_seconds=plan.step_seconds,
            params=self._params(chunk.resolution),
            description=(
                f"workload {plan.name}, chunk {chunk.index + 1} of {len(plan.chunks)} "
                f"({chunk.start.isoformat()} to {chunk.end.isoformat()})"
            ),
            key=plan.key,
        )

    def _params(self, resolution: Resolution) -> dict[str, str | list[str]]:
        params: dict[str, str | list[str]] = {
            "dedup": "true" if self._settings.dedup else "false",
            "partial_response": "false",
            "max_source_resolution": resolution.parameter,
        }
        if self._settings.replica_labels:
            params["replicaLabels[]"] = list(self._settings.replica_labels)
        return params

    def _run(self, requests: Sequence[RangeRequest]) -> list[RangeResponse]:
        """Send ``requests`` concurrently; the first failure cancels the ones not started."""
        if len(requests) == 1:
            return [self._client.query_range(requests[0])]
        workers = min(len(requests), self._settings.max_concurrent_requests)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="thanos") as pool:
            futures: list[Future[RangeResponse]] = [
                pool.submit(self._client.query_range, request) for request in requests
            ]
            try:
                return [future.result() for future in futures]
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    def _check_staleness(self, plan: _Plan, series: dict[LabelSet, GridSeries]) -> _Staleness:
        stale = {key: np.zeros(len(plan.grid), dtype=bool) for key in series}
        stale_after = self._settings.stale_after_seconds
        if stale_after is None or not series or not plan.selectors:
            return _Staleness(stale)

        longest = max(longest_range_seconds(query) for query in plan.chunk_queries)
        span = window_points(plan.step_seconds, self._settings.lookback_delta_seconds, longest)
        # A probe is one range request, so its window must respect the point limit too.
        span = min(span, self._settings.max_points_per_request - 1)
        windows = plan_windows(
            (item.values for item in series.values()), span, self._settings.max_staleness_windows
        )
        if windows.unchecked:
            logger.warning(
                "%s: %d older ends of data runs were not checked for stale samples",
                plan.name,
                windows.unchecked,
            )
        labels = probe_labels(series.values())
        resolutions = resolution_per_point(plan.chunks, len(plan.grid))
        requests = [
            self._probe_request(plan, window, selector, labels)
            for window in windows.windows
            for selector in plan.selectors
        ]
        responses = self._run(requests) if requests else []

        grid_seconds = plan.grid.as_unit("ns").asi8 / 1e9
        warnings: list[str] = []
        per_window = len(plan.selectors)
        for number, window in enumerate(windows.windows):
            results = responses[number * per_window : (number + 1) * per_window]
            warnings.extend(warning for result in results for warning in result.warnings)
            positions = slice(window.first, window.last + 1)
            resolution = self._resolution_at(plan, window.last)
            chunk = window_chunk(plan.grid, window, resolution)
            newest = newest_sample_times(
                [result.result for result in results], chunk, plan.step_seconds, labels, series
            )
            threshold = stale_after + resolutions[positions]
            # Without a sample inside the lookback, timestamp() returns nothing. On raw data
            # scraped more often than the lookback that means the series stopped. On
            # downsampled data, or with scrapes further apart than the lookback, it does not.
            unknown_is_stale = (resolutions[positions] == 0) & (
                self._settings.scrape_interval_seconds < self._settings.lookback_delta_seconds
            )
            for key, item in series.items():
                stale[key][positions] |= stale_positions(
                    newest[key],
                    item.values[positions],
                    grid_seconds[positions],
                    threshold,
                    unknown_is_stale,
                )
        for key, item in series.items():
            item.values[stale[key]] = np.nan
        return _Staleness(stale, len(windows.windows), windows.unchecked, tuple(warnings))

    def _probe_request(
        self,
        plan: _Plan,
        window: Window,
        selector: str,
        labels: Sequence[str],
    ) -> RangeRequest:
        resolution = self._resolution_at(plan, window.last)
        return RangeRequest(
            query=probe_query(selector, labels),
            start=plan.grid[window.first],
            end=plan.grid[window.last],
            step_seconds=plan.step_seconds,
            params=self._params(resolution),
            description=(
                f"workload {plan.name}, staleness check of {selector} "
                f"({plan.grid[window.first].isoformat()} to {plan.grid[window.last].isoformat()})"
            ),
            key=plan.key,
        )

    def _resolution_at(self, plan: _Plan, position: int) -> Resolution:
        for chunk in plan.chunks:
            if chunk.first <= position < chunk.stop:
                return chunk.resolution
        raise ValueError(f"grid position {position} is in no chunk")

    def _report(
        self,
        plan: _Plan,
        chunks: list[ChunkReport],
        counts: PlacementCounts,
        merged: ReplicaMerge,
        staleness: _Staleness | None,
        started: float,
    ) -> FetchReport:
        all_warnings = [warning for chunk in chunks for warning in chunk.warnings]
        if staleness is not None:
            all_warnings.extend(staleness.warnings)
        partial = tuple(dict.fromkeys(w for w in all_warnings if not self._is_ignored(w)))
        ignored = tuple(dict.fromkeys(w for w in all_warnings if self._is_ignored(w)))
        notes = list(plan.notes) + list(merged.merged)
        empty = sum(chunk.is_empty for chunk in chunks)
        if empty:
            notes.append(f"{empty} of {len(chunks)} chunks returned no samples")
        if staleness is not None and staleness.unchecked:
            notes.append(
                f"{staleness.unchecked} older ends of data runs were not checked for stale samples"
            )
        grid = plan.grid
        return FetchReport(
            workload=plan.name,
            query=plan.query,
            start=grid[0] if len(grid) else None,
            end=grid[-1] if len(grid) else None,
            step=pd.Timedelta(seconds=plan.step_seconds),
            points=len(grid),
            chunks=tuple(chunks),
            series=tuple(
                _series_report(item, staleness.stale[key] if staleness else None, grid)
                for key, item in merged.series.items()
            ),
            warnings=partial,
            ignored_warnings=ignored,
            replica_series_merged=merged.series_before - len(merged.series),
            replica_values_dropped=merged.values_dropped,
            replica_disagreeing_points=merged.disagreeing_points,
            non_finite_points=counts.non_finite,
            misaligned_points=counts.misaligned,
            duplicate_points=counts.duplicates,
            staleness_windows_checked=staleness.checked if staleness else 0,
            staleness_windows_unchecked=staleness.unchecked if staleness else 0,
            notes=tuple(notes),
            elapsed_seconds=time.monotonic() - started,
        )

    def _is_ignored(self, warning: str) -> bool:
        return any(pattern.search(warning) for pattern in self._ignored)


def _chunk_report(
    chunk: Chunk, query: str, response: RangeResponse, placed: PlacementCounts
) -> ChunkReport:
    return ChunkReport(
        start=chunk.start,
        end=chunk.end,
        points=chunk.points,
        max_source_resolution=chunk.resolution.parameter,
        query=query,
        series=len(response.result),
        observed_points=placed.observed_points,
        warnings=response.warnings,
        attempts=response.attempts,
        elapsed_seconds=response.elapsed_seconds,
    )


def _series_report(
    item: GridSeries, stale: np.ndarray | None, grid: pd.DatetimeIndex
) -> SeriesReport:
    present = ~np.isnan(item.values)
    last = int(np.flatnonzero(present)[-1]) if present.any() else -1
    stale_points = int(stale.sum()) if stale is not None else 0
    stale_from = None
    if stale is not None:
        tail = np.flatnonzero(stale[last + 1 :])
        if len(tail):
            stale_from = grid[last + 1 + int(tail[0])]
    return SeriesReport(
        labels=format_labels(item.labels),
        observed_points=int(present.sum()),
        stale_points=stale_points,
        stale_from=stale_from,
        last_observed=grid[last] if last >= 0 else None,
    )


def _step_seconds(step: pd.Timedelta | None) -> int:
    if step is None:
        raise ConfigError("step", None, "a step of whole seconds, e.g. 60 s")
    seconds = pd.Timedelta(step).total_seconds()
    if seconds < 1 or seconds != int(seconds):
        raise ConfigError("step", str(step), "a positive whole number of seconds")
    return int(seconds)

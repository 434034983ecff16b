"""What one Thanos fetch found, per chunk and per series, for logs and for the caller.

A ``FetchReport`` states how much of the grid came back, which chunks were empty, which
warnings the server sent, which replicas were merged and where a series went stale. The
errors raised for unusable history carry the report, so a caller that holds capacity can
log why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecaster.errors import DataError, MissingDataError, PartialDataError


@dataclass(frozen=True)
class ChunkReport:
    """One range request: its grid points, resolution, result and cost."""

    start: pd.Timestamp
    end: pd.Timestamp
    points: int
    max_source_resolution: str
    query: str
    series: int
    observed_points: int
    warnings: tuple[str, ...]
    attempts: int
    elapsed_seconds: float

    @property
    def coverage(self) -> float:
        """Share of the chunk's grid points with a finite value in at least one series."""
        return self.observed_points / self.points if self.points else 0.0

    @property
    def is_empty(self) -> bool:
        return self.observed_points == 0


@dataclass(frozen=True)
class SeriesReport:
    """One result series after replica merging and the staleness check."""

    labels: str
    observed_points: int
    stale_points: int
    stale_from: pd.Timestamp | None
    last_observed: pd.Timestamp | None


@dataclass(frozen=True)
class FetchReport:
    """Everything a fetch classified. ``warnings`` are the ones that make the data partial."""

    workload: str
    query: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    step: pd.Timedelta
    points: int
    chunks: tuple[ChunkReport, ...] = ()
    series: tuple[SeriesReport, ...] = ()
    warnings: tuple[str, ...] = ()
    ignored_warnings: tuple[str, ...] = ()
    replica_series_merged: int = 0
    replica_values_dropped: int = 0
    replica_disagreeing_points: int = 0
    non_finite_points: int = 0
    misaligned_points: int = 0
    duplicate_points: int = 0
    staleness_windows_checked: int = 0
    staleness_windows_unchecked: int = 0
    notes: tuple[str, ...] = ()
    elapsed_seconds: float = 0.0

    @property
    def partial(self) -> bool:
        """True when the server reported a partial response through warnings."""
        return bool(self.warnings)

    @property
    def empty_chunks(self) -> int:
        return sum(chunk.is_empty for chunk in self.chunks)

    @property
    def series_count(self) -> int:
        return len(self.series)

    @property
    def stale_points(self) -> int:
        return sum(item.stale_points for item in self.series)

    @property
    def stale_from(self) -> pd.Timestamp | None:
        """Earliest time from which a series only repeated old samples up to its end."""
        times = [item.stale_from for item in self.series if item.stale_from is not None]
        return min(times) if times else None

    @property
    def observed_points(self) -> int:
        return sum(chunk.observed_points for chunk in self.chunks)

    def summary(self) -> str:
        """Describe the fetch in one line for a log record."""
        text = (
            f"{self.points} grid points at {self.step} in {len(self.chunks)} chunks "
            f"({self.empty_chunks} empty), {self.series_count} series"
        )
        if self.replica_series_merged:
            text += f", {self.replica_series_merged} replica series merged"
        if self.non_finite_points:
            text += f", {self.non_finite_points} NaN/Inf values"
        if self.stale_points:
            text += f", {self.stale_points} stale points"
        if self.stale_from is not None:
            text += f", stale from {self.stale_from.isoformat()}"
        if self.warnings:
            text += f", {len(self.warnings)} warnings (partial)"
        return text + f", {self.elapsed_seconds:.2f} s"

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready values, for structured logs."""
        return {
            "workload": self.workload,
            "query": self.query,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "step_seconds": self.step.total_seconds(),
            "points": self.points,
            "chunks": [
                {
                    "start": _iso(chunk.start),
                    "end": _iso(chunk.end),
                    "points": chunk.points,
                    "max_source_resolution": chunk.max_source_resolution,
                    "coverage": chunk.coverage,
                    "series": chunk.series,
                    "warnings": list(chunk.warnings),
                    "attempts": chunk.attempts,
                    "elapsed_seconds": chunk.elapsed_seconds,
                }
                for chunk in self.chunks
            ],
            "series": [
                {
                    "labels": item.labels,
                    "observed_points": item.observed_points,
                    "stale_points": item.stale_points,
                    "stale_from": _iso(item.stale_from),
                    "last_observed": _iso(item.last_observed),
                }
                for item in self.series
            ],
            "warnings": list(self.warnings),
            "ignored_warnings": list(self.ignored_warnings),
            "replica_series_merged": self.replica_series_merged,
            "replica_values_dropped": self.replica_values_dropped,
            "replica_disagreeing_points": self.replica_disagreeing_points,
            "non_finite_points": self.non_finite_points,
            "misaligned_points": self.misaligned_points,
            "duplicate_points": self.duplicate_points,
            "staleness_windows_checked": self.staleness_windows_checked,
            "staleness_windows_unchecked": self.staleness_windows_unchecked,
            "notes": list(self.notes),
            "elapsed_seconds": self.elapsed_seconds,
        }


class ThanosMissingDataError(MissingDataError):
    """The query returned no usable sample in the requested range."""

    def __init__(self, message: str, report: FetchReport) -> None:
        self.report = report
        super().__init__(message)


class ThanosPartialDataError(PartialDataError):
    """The server responded with warnings, so stores or samples may be missing anywhere."""

    def __init__(self, message: str, report: FetchReport) -> None:
        self.report = report
        super().__init__(message)


class UnexpectedSeriesError(DataError):
    """A demand query returned more than one series; a workload's demand is one series."""

    def __init__(self, message: str, report: FetchReport) -> None:
        self.report = report
        super().__init__(message)


def _iso(moment: pd.Timestamp | None) -> str | None:
    return None if moment is None else moment.isoformat()

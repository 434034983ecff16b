"""Split a long range query into step-aligned chunks, each with its Thanos source resolution.

Prometheus and Thanos reject a range query whose ``(end - start) / step`` exceeds 11,000, so a
chunk contains at most ``max_points`` grid points. Chunks partition the grid: the first point of
a chunk is the step after the last point of the one before, so stitching them gives every
grid point exactly once. Each point is evaluated on its own by the server, which makes the
stitched result equal to one query over the whole grid.

Thanos reads only raw blocks unless ``max_source_resolution`` allows downsampled ones, and the
compactor downsamples blocks older than about 40 h to 5m and older than about 10 days to 1h.
A chunk's resolution therefore follows the age of its oldest point, and the grid is split
at the age thresholds so the recent part stays at raw resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Resolution:
    """A Thanos source resolution: ``parameter`` is the max_source_resolution value sent."""

    parameter: str
    seconds: int


RAW = Resolution("0s", 0)
FIVE_MINUTES = Resolution("5m", 300)
ONE_HOUR = Resolution("1h", 3600)


@dataclass(frozen=True)
class Chunk:
    """Grid points ``first`` to ``first + points - 1`` (positions in the whole grid)."""

    index: int
    first: int
    points: int
    start: pd.Timestamp
    end: pd.Timestamp
    resolution: Resolution

    @property
    def stop(self) -> int:
        """Position after the chunk's last grid point."""
        return self.first + self.points


@dataclass(frozen=True)
class ResolutionAges:
    """Maximum age, in seconds, of the oldest point of a chunk read at raw and at 5m."""

    raw_seconds: int
    five_minutes_seconds: int


def plan_chunks(
    grid: pd.DatetimeIndex, now: pd.Timestamp, max_points: int, ages: ResolutionAges
) -> list[Chunk]:
    """Return the chunks covering ``grid`` in time order.

    ``now`` is the time the data ages are measured from. Raises ValueError when
    ``max_points`` is below 1.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    chunks: list[Chunk] = []
    for first, stop, resolution in _resolution_segments(grid, now, ages):
        for chunk_first in range(first, stop, max_points):
            chunk_stop = min(chunk_first + max_points, stop)
            chunks.append(
                Chunk(
                    index=len(chunks),
                    first=chunk_first,
                    points=chunk_stop - chunk_first,
                    start=grid[chunk_first],
                    end=grid[chunk_stop - 1],
                    resolution=resolution,
                )
            )
    return chunks


def _resolution_segments(
    grid: pd.DatetimeIndex, now: pd.Timestamp, ages: ResolutionAges
) -> list[tuple[int, int, Resolution]]:
    """Split grid positions into [first, stop) runs that share one source resolution."""
    five_minute_from = now - pd.Timedelta(seconds=ages.five_minutes_seconds)
    raw_from = now - pd.Timedelta(seconds=ages.raw_seconds)
    five_minute_first = int(grid.searchsorted(five_minute_from, side="left"))
    raw_first = int(grid.searchsorted(raw_from, side="left"))
    segments = [
        (0, five_minute_first, ONE_HOUR),
        (five_minute_first, raw_first, FIVE_MINUTES),
        (raw_first, len(grid), RAW),
    ]
    return [(first, stop, resolution) for first, stop, resolution in segments if stop > first]


def resolution_per_point(chunks: list[Chunk], points: int) -> np.ndarray:
    """Return the source resolution in seconds of every grid point."""
    seconds = np.zeros(points, dtype=np.int64)
    for chunk in chunks:
        seconds[chunk.first : chunk.stop] = chunk.resolution.seconds
    return seconds

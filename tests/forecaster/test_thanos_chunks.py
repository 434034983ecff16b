"""Chunk planning: a partition of the grid within the point limit, resolution by age."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.history import empty_grid
from forecaster.sources.thanos_chunks import (
    FIVE_MINUTES,
    ONE_HOUR,
    RAW,
    ResolutionAges,
    plan_chunks,
    resolution_per_point,
)

NOW = pd.Timestamp("2024-06-15T00:00:00Z")
AGES = ResolutionAges(raw_seconds=40 * 3600, five_minutes_seconds=10 * 86_400)


@settings(max_examples=100, deadline=None)
@given(
    points=st.integers(min_value=1, max_value=40_000),
    step_seconds=st.sampled_from([15, 60, 300, 3600]),
    max_points=st.integers(min_value=100, max_value=11_000),
    end_age_seconds=st.integers(min_value=0, max_value=30 * 86_400),
)
def test_chunks_partition_grid(
    points: int, step_seconds: int, max_points: int, end_age_seconds: int
) -> None:
    step = pd.Timedelta(seconds=step_seconds)
    end = (NOW - pd.Timedelta(seconds=end_age_seconds)).floor(step)
    grid = empty_grid(end - (points - 1) * step, end, step)

    chunks = plan_chunks(grid, NOW, max_points, AGES)

    assert chunks[0].first == 0
    assert chunks[-1].stop == len(grid)
    for before, after in itertools.pairwise(chunks):
        assert after.first == before.stop
        assert after.start == before.end + step
    for chunk in chunks:
        assert 1 <= chunk.points <= max_points
        assert chunk.start == grid[chunk.first]
        assert chunk.end == grid[chunk.stop - 1]
        age = (NOW - chunk.start).total_seconds()
        expected = RAW if age <= AGES.raw_seconds else FIVE_MINUTES
        if age > AGES.five_minutes_seconds:
            expected = ONE_HOUR
        assert chunk.resolution == expected


def test_fourteen_days_at_one_minute_in_two_chunks() -> None:
    step = pd.Timedelta(minutes=1)
    grid = empty_grid(NOW - pd.Timedelta(days=14) + step, NOW, step)
    all_raw = ResolutionAges(10**9, 10**9)

    chunks = plan_chunks(grid, NOW, 11_000, all_raw)

    assert [chunk.points for chunk in chunks] == [11_000, 9_160]


def test_resolution_per_point_follows_chunks() -> None:
    step = pd.Timedelta(hours=1)
    grid = empty_grid(NOW - pd.Timedelta(days=12), NOW, step)

    chunks = plan_chunks(grid, NOW, 11_000, AGES)
    seconds = resolution_per_point(chunks, len(grid))

    assert seconds[0] == 3600
    assert seconds[-1] == 0
    assert set(seconds.tolist()) == {0, 300, 3600}


def test_invalid_point_limit() -> None:
    grid = empty_grid(NOW - pd.Timedelta(hours=1), NOW, pd.Timedelta(minutes=1))

    with pytest.raises(ValueError, match="at least 1"):
        plan_chunks(grid, NOW, 0, AGES)

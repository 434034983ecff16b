"""Staleness windows and the stale-point rule, without a server."""

from __future__ import annotations

import numpy as np

from forecaster.sources.thanos_staleness import (
    Window,
    plan_windows,
    probe_query,
    stale_positions,
    window_points,
)

NAN = np.nan


def test_window_ends_at_each_run_end() -> None:
    values = np.array([1, 1, NAN, NAN, 1, 1, 1, NAN, NAN, 1.0])

    plan = plan_windows([values], span_points=1, limit=10)

    assert plan.windows == (Window(0, 1), Window(5, 6), Window(8, 9))
    assert plan.unchecked == 0


def test_windows_merge_across_series() -> None:
    first = np.array([1, 1, 1, 1, NAN, NAN])
    second = np.array([1, 1, 1, 1, 1, NAN])

    plan = plan_windows([first, second], span_points=2, limit=10)

    assert plan.windows == (Window(1, 4),)


def test_adjacent_windows_merge() -> None:
    values = np.array([1, 1, NAN, 1.0])

    plan = plan_windows([values], span_points=1, limit=10)

    assert plan.windows == (Window(0, 3),)


def test_only_newest_windows_kept() -> None:
    values = np.array([1, NAN, 1, NAN, 1, NAN, 1.0])

    plan = plan_windows([values], span_points=0, limit=2)

    assert plan.windows == (Window(4, 4), Window(6, 6))
    assert plan.unchecked == 2


def test_window_covers_lookback_or_range() -> None:
    assert window_points(60, 300, 0) == 5
    assert window_points(60, 300, 900) == 15
    assert window_points(7, 300, 0) == 43


def test_old_sample_is_stale() -> None:
    grid = np.array([0.0, 60, 120, 180])
    newest = np.array([0.0, 60, 60, 60])
    values = np.ones(4)

    stale = stale_positions(newest, values, grid, np.full(4, 120.0), np.ones(4, dtype=bool))

    assert stale.tolist() == [False, False, False, True]


def test_unknown_sample_time_on_downsampled_data_kept() -> None:
    grid = np.array([0.0, 60, 120])
    newest = np.array([0.0, NAN, NAN])
    values = np.ones(3)
    raw_then_downsampled = np.array([True, True, False])

    stale = stale_positions(newest, values, grid, np.full(3, 120.0), raw_then_downsampled)

    assert stale.tolist() == [False, True, False]


def test_probe_groups_by_result_labels() -> None:
    assert probe_query('x{job="a"}', ["model", "pod"]) == (
        'max by (model, pod) (timestamp(x{job="a"}))'
    )

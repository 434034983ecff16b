"""Cleaning: ordering, duplicates, invalid and declared-missing values, and spike removal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.cleaning import SPIKE, SpikeRule, clean, find_spikes

START = pd.Timestamp("2021-03-01", tz="UTC")
MINUTE = pd.Timedelta(minutes=1)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def at_minutes(values: list[float], minutes: list[int] | None = None) -> pd.Series:
    """Build raw samples at whole minutes after START, in the order given."""
    offsets = range(len(values)) if minutes is None else minutes
    index = pd.DatetimeIndex([START + m * MINUTE for m in offsets]).as_unit("ns")
    return pd.Series(values, index=index, dtype=float)


def regular(values: np.ndarray, step: pd.Timedelta = MINUTE) -> pd.Series:
    index = pd.date_range(START, periods=len(values), freq=step).as_unit("ns")
    return pd.Series(values, index=index, dtype=float)


def daily_cycle(days: int, step: pd.Timedelta, trough: float, peak: float) -> np.ndarray:
    """Return a smooth daily cycle between ``trough`` and ``peak``, peaking at 18:00."""
    hours = np.arange(days * pd.Timedelta(days=1) // step) * step.total_seconds() / 3600
    shape = (1 - np.cos(2 * np.pi * (hours - 6) / 24)) / 2
    return trough + (peak - trough) * shape


def steady_noise(count: int, level: float = 100.0, seed: int = 7) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0, level * 0.05, count)


# Ordering and duplicates -----------------------------------------------------------------


def test_out_of_order_rows_sorted() -> None:
    cleaned = clean(at_minutes([1.0, 3.0, 2.0, 4.0], [0, 2, 1, 3]), spike_rule=None)

    assert cleaned.values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert cleaned.values.index.is_monotonic_increasing


def test_out_of_order_rows_counted() -> None:
    cleaned = clean(at_minutes([1.0, 3.0, 2.0, 0.5, 4.0], [1, 3, 2, 0, 4]), spike_rule=None)

    assert cleaned.report.out_of_order_sorted == 2


def test_duplicate_timestamp_keeps_last_row() -> None:
    cleaned = clean(at_minutes([1.0, 2.0, 9.0, 3.0], [0, 1, 1, 2]), spike_rule=None)

    assert cleaned.values.tolist() == [1.0, 9.0, 3.0]


def test_duplicate_timestamps_counted() -> None:
    cleaned = clean(at_minutes([1.0, 2.0, 9.0, 8.0, 3.0], [0, 1, 1, 1, 2]), spike_rule=None)

    assert cleaned.report.duplicates_dropped == 2


def test_duplicate_keeps_last_in_file_order() -> None:
    cleaned = clean(at_minutes([5.0, 1.0, 7.0], [1, 0, 1]), spike_rule=None)

    assert cleaned.values.tolist() == [1.0, 7.0]


# Invalid values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(np.nan, id="nan"),
        pytest.param(np.inf, id="inf"),
        pytest.param(-np.inf, id="minus-inf"),
    ],
)
def test_non_finite_value_becomes_missing(bad: float) -> None:
    cleaned = clean(at_minutes([1.0, bad, 3.0]), spike_rule=None)

    assert np.isnan(cleaned.values.iloc[1])
    assert cleaned.report.non_finite_dropped == 1


def test_negative_value_becomes_missing() -> None:
    cleaned = clean(at_minutes([1.0, -2.0, 3.0]), spike_rule=None)

    assert np.isnan(cleaned.values.iloc[1])
    assert cleaned.report.negative_dropped == 1


def test_zero_value_kept() -> None:
    cleaned = clean(at_minutes([0.0, 0.0, 3.0]), spike_rule=None)

    assert cleaned.values.tolist() == [0.0, 0.0, 3.0]


def test_no_value_turned_into_zero() -> None:
    raw = at_minutes([np.nan, -1.0, np.inf, 5.0, 4.0])

    cleaned = clean(raw, missing_values=[5.0], spike_rule=None)

    assert (cleaned.values == 0).sum() == 0
    assert cleaned.values.notna().sum() == 1


# Declared missing ------------------------------------------------------------------------


def test_declared_missing_value_becomes_missing() -> None:
    cleaned = clean(at_minutes([10.0, 0.0, 12.0]), missing_values=[0.0], spike_rule=None)

    assert cleaned.values.isna().tolist() == [False, True, False]
    assert cleaned.report.declared_missing == 1


def test_declared_sentinel_not_counted_as_negative() -> None:
    cleaned = clean(at_minutes([10.0, -1.0, 12.0]), missing_values=[-1.0], spike_rule=None)

    assert cleaned.report.declared_missing == 1
    assert cleaned.report.negative_dropped == 0


def test_declared_period_includes_both_ends() -> None:
    period = (START + 1 * MINUTE, START + 3 * MINUTE)

    cleaned = clean(
        at_minutes([1.0, 2.0, 3.0, 4.0, 5.0]), missing_periods=[period], spike_rule=None
    )

    assert cleaned.values.isna().tolist() == [False, True, True, True, False]
    assert cleaned.report.declared_missing == 3


def test_value_missing_for_two_reasons_counted_once() -> None:
    period = (START, START + 2 * MINUTE)

    cleaned = clean(
        at_minutes([np.nan, -3.0, 0.0]),
        missing_values=[0.0],
        missing_periods=[period],
        spike_rule=None,
    )

    assert cleaned.report.non_finite_dropped == 1
    assert cleaned.report.declared_missing == 2
    assert cleaned.report.negative_dropped == 0


def test_report_between_counts_only_window() -> None:
    cleaned = clean(at_minutes([-1.0, 2.0, -3.0, 4.0, 4.5], [0, 1, 2, 3, 3]), spike_rule=None)

    window = cleaned.report_between(START + 2 * MINUTE, START + 4 * MINUTE)

    assert window.negative_dropped == 1
    assert window.duplicates_dropped == 1


# Spikes ----------------------------------------------------------------------------------


def test_isolated_spike_removed() -> None:
    values = steady_noise(400)
    values[300] = 100_000.0

    cleaned = clean(regular(values))

    assert np.isnan(cleaned.values.iloc[300])
    assert cleaned.report.spikes_dropped == 1


def test_short_burst_of_spikes_removed() -> None:
    values = steady_noise(400)
    values[300:305] = 50_000.0

    cleaned = clean(regular(values))

    assert cleaned.report.spikes_dropped == 5


def test_spike_only_removes_spike_samples() -> None:
    values = steady_noise(400)
    values[300] = 100_000.0

    cleaned = clean(regular(values))

    assert cleaned.values.notna().sum() == 399


def test_second_spike_found_after_first_removed() -> None:
    values = steady_noise(400, seed=3)
    values[[200, 201, 202, 300]] = [40_000.0, 40_000.0, 40_000.0, 30_000.0]
    ten_minutes = pd.Timedelta(minutes=10)
    rule = SpikeRule(
        level=0.99, window=pd.Timedelta(days=1), min_samples=100, max_duration=pd.Timedelta(hours=1)
    )

    flagged = find_spikes(regular(values, ten_minutes), rule)

    assert np.flatnonzero(flagged).tolist() == [200, 201, 202, 300]


def test_daily_peak_kept() -> None:
    values = daily_cycle(days=14, step=pd.Timedelta(minutes=10), trough=1.0, peak=80.0)

    cleaned = clean(regular(values, pd.Timedelta(minutes=10)))

    assert cleaned.report.spikes_dropped == 0


def test_sudden_first_daily_peak_kept() -> None:
    values = np.full(3 * 24 * 60, 2.0)
    for day in range(3):
        values[day * 1440 + 18 * 60 : day * 1440 + 21 * 60] = 90.0

    cleaned = clean(regular(values))

    assert cleaned.report.spikes_dropped == 0


def test_level_shift_kept() -> None:
    values = np.concatenate([steady_noise(600, level=1.0), steady_noise(600, level=500.0)])

    cleaned = clean(regular(values))

    assert cleaned.report.spikes_dropped == 0
    assert cleaned.values.notna().all()


def test_spike_at_series_end_removed() -> None:
    values = steady_noise(400)
    values[-1] = 100_000.0

    cleaned = clean(regular(values))

    assert np.isnan(cleaned.values.iloc[-1])


def test_spike_not_judged_without_enough_history() -> None:
    values = steady_noise(50)
    values[10] = 100_000.0

    cleaned = clean(regular(values))

    assert cleaned.report.spikes_dropped == 0


def test_mostly_idle_series_activity_kept() -> None:
    # 1 % of the first 1000 samples are busy, so the 99th percentile sits where idle and
    # busy samples meet. An interpolated reference there would be a tiny positive number.
    values = np.zeros(1100)
    values[np.arange(10, 1000, 100)] = 8.0
    values[1000] = 25.0

    cleaned = clean(regular(values))

    assert cleaned.report.spikes_dropped == 0


def test_spike_rule_none_keeps_spikes() -> None:
    values = steady_noise(400)
    values[300] = 100_000.0

    cleaned = clean(regular(values), spike_rule=None)

    assert cleaned.values.iloc[300] == 100_000.0


def test_spike_ratio_configurable() -> None:
    values = steady_noise(400)
    values[300] = 1_000.0

    cleaned = clean(regular(values), spike_rule=SpikeRule(ratio=5.0))

    assert cleaned.reasons.iloc[300] == SPIKE


def test_spike_ratio_default_keeps_tenfold_burst() -> None:
    values = steady_noise(400)
    values[300] = 1_000.0

    cleaned = clean(regular(values))

    assert cleaned.values.iloc[300] == 1_000.0


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"ratio": 1.0}, id="ratio"),
        pytest.param({"level": 1.0}, id="level"),
        pytest.param({"window": pd.Timedelta(0)}, id="window"),
        pytest.param({"min_samples": 0}, id="min-samples"),
        pytest.param({"max_duration": pd.Timedelta(0)}, id="max-duration"),
    ],
)
def test_spike_rule_rejects_invalid_setting(arguments: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="spike"):
        SpikeRule(**arguments)  # type: ignore[arg-type]

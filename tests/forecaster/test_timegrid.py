"""Timestamp parsing, DST handling and placing samples on the epoch-aligned UTC grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import DataError
from forecaster.timegrid import (
    InvalidTimestampError,
    describe_regrid,
    format_span,
    infer_step,
    parse_timestamps,
    period_in_utc,
    snap_jitter,
    to_grid,
)

MINUTE = pd.Timedelta(minutes=1)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def local_range(start: str, end: str, freq: str) -> list[str]:
    """Return naive wall-clock strings from start to end at ``freq``."""
    return [t.strftime("%Y-%m-%dT%H:%M:%S") for t in pd.date_range(start, end, freq=freq)]


def wall_clock_across(zone: str, start: str, end: str, freq: str) -> list[str]:
    """Return what a clock in ``zone`` shows at each UTC instant from start to end."""
    instants = pd.date_range(start, end, freq=freq, tz="UTC")
    return [t.strftime("%Y-%m-%dT%H:%M:%S") for t in instants.tz_convert(zone)]


def samples(values: list[float], times: list[str]) -> pd.Series:
    index = pd.DatetimeIndex([utc(t) for t in times]).as_unit("ns")
    return pd.Series(values, index=index, dtype=float)


# Parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2021-06-01T12:00:00+02:00", "2021-06-01T10:00:00", id="plus-two-hours"),
        pytest.param("2021-06-01T12:00:00-05:00", "2021-06-01T17:00:00", id="minus-five-hours"),
        pytest.param("2021-06-01T12:00:00Z", "2021-06-01T12:00:00", id="zulu"),
        pytest.param("2021-06-01T12:00:00+0530", "2021-06-01T06:30:00", id="compact-offset"),
    ],
)
def test_offset_timestamp_converted_to_utc(text: str, expected: str) -> None:
    parsed = parse_timestamps(pd.Series([text]), "Europe/Berlin")

    assert parsed.utc[0] == utc(expected)


def test_offset_wins_over_configured_zone() -> None:
    parsed = parse_timestamps(
        pd.Series(["2021-01-01T00:00:00+00:00", "2021-01-01T00:00:00"]), "Europe/Berlin"
    )

    assert list(parsed.utc) == [utc("2021-01-01T00:00"), utc("2020-12-31T23:00")]


def test_naive_timestamp_default_zone_is_utc() -> None:
    parsed = parse_timestamps(pd.Series(["2021-07-01T08:30:00"]))

    assert parsed.utc[0] == utc("2021-07-01T08:30")


def test_naive_timestamp_read_in_configured_zone() -> None:
    parsed = parse_timestamps(pd.Series(["2021-07-01T08:30:00"]), "America/New_York")

    assert parsed.utc[0] == utc("2021-07-01T12:30")


def test_parsed_index_is_utc() -> None:
    parsed = parse_timestamps(pd.Series(["2021-07-01T08:30:00"]), "Europe/Berlin")

    assert str(parsed.utc.tz) == "UTC"


def test_date_only_value_is_not_an_offset() -> None:
    parsed = parse_timestamps(pd.Series(["2021-07-01"]), "Europe/Berlin")

    assert parsed.utc[0] == utc("2021-06-30T22:00")


@pytest.mark.parametrize(
    ("cells", "row", "value"),
    [
        pytest.param(["2021-01-01T00:00:00", "yesterday"], 2, "yesterday", id="text"),
        pytest.param(
            ["2021-01-01T00:00:00", "2021-13-01T00:00:00"], 2, "2021-13-01T00:00:00", id="month-13"
        ),
        pytest.param(["2021-01-01T00:00:00", None], 2, "", id="empty"),
        pytest.param(["2999-01-01T00:00:00"], 1, "2999-01-01T00:00:00", id="beyond-2262"),
    ],
)
def test_invalid_timestamp_names_row_and_value(
    cells: list[str | None], row: int, value: str
) -> None:
    with pytest.raises(InvalidTimestampError) as caught:
        parse_timestamps(pd.Series(cells, dtype=object))

    assert caught.value.row == row
    assert caught.value.value == value
    assert f"data row {row}" in str(caught.value)


# DST -------------------------------------------------------------------------------------

DST_CASES = [
    pytest.param(
        "Europe/Berlin", "2021-03-27T23:00", "2021-03-28T04:00", id="berlin-spring-forward"
    ),
    pytest.param("Europe/Berlin", "2021-10-30T22:00", "2021-10-31T04:00", id="berlin-fall-back"),
    pytest.param(
        "America/New_York", "2021-03-14T05:00", "2021-03-14T10:00", id="new-york-spring-forward"
    ),
    pytest.param(
        "America/New_York", "2021-11-07T04:00", "2021-11-07T10:00", id="new-york-fall-back"
    ),
]


@pytest.mark.parametrize(("zone", "start", "end"), DST_CASES)
def test_local_clock_across_dst_gives_regular_utc(zone: str, start: str, end: str) -> None:
    wall = wall_clock_across(zone, start, end, "15min")

    parsed = parse_timestamps(pd.Series(wall), zone)

    assert list(parsed.utc) == list(pd.date_range(start, end, freq="15min", tz="UTC"))


@pytest.mark.parametrize(("zone", "start", "end"), DST_CASES)
def test_local_clock_across_dst_fills_grid(zone: str, start: str, end: str) -> None:
    wall = wall_clock_across(zone, start, end, "15min")
    parsed = parse_timestamps(pd.Series(wall), zone)
    trace = pd.Series(1.0, index=parsed.utc)

    grid = to_grid(trace, pd.Timedelta(minutes=15))

    expected_points = (utc(end) - utc(start)) // pd.Timedelta(minutes=15) + 1
    assert len(grid) == expected_points
    assert grid.notna().all()


def test_fall_back_hour_resolved_by_row_order() -> None:
    wall = wall_clock_across("Europe/Berlin", "2021-10-31T00:00", "2021-10-31T01:45", "15min")

    parsed = parse_timestamps(pd.Series(wall), "Europe/Berlin")

    assert parsed.ambiguous_by_order == 8
    assert parsed.ambiguous_by_rule == 0
    assert "row order" in parsed.notes[0]


def test_hourly_fall_back_repeated_wall_time_resolved() -> None:
    wall = [
        "2021-11-07T00:00:00",
        "2021-11-07T01:00:00",
        "2021-11-07T01:00:00",
        "2021-11-07T02:00:00",
    ]

    parsed = parse_timestamps(pd.Series(wall), "America/New_York")

    assert list(parsed.utc) == list(
        pd.date_range("2021-11-07T04:00", periods=4, freq="h", tz="UTC")
    )


def test_lone_repeated_hour_is_summer_time() -> None:
    parsed = parse_timestamps(pd.Series(["2021-10-31T02:30:00"]), "Europe/Berlin")

    assert parsed.utc[0] == utc("2021-10-31T00:30")
    assert parsed.ambiguous_by_rule == 1


def test_repeated_hour_duplicate_uses_rule() -> None:
    wall = ["2021-10-31T02:00:00", "2021-10-31T02:30:00", "2021-10-31T02:30:00"]
    wall += ["2021-10-31T02:00:00", "2021-10-31T02:30:00"]

    parsed = parse_timestamps(pd.Series(wall), "Europe/Berlin")

    assert parsed.ambiguous_by_rule == 5
    assert parsed.utc[0] == utc("2021-10-31T00:00")
    assert parsed.utc[3] == utc("2021-10-31T01:00")


def test_skipped_hour_shifted_forward() -> None:
    parsed = parse_timestamps(pd.Series(["2021-03-28T02:30:00"]), "Europe/Berlin")

    assert parsed.utc[0] == utc("2021-03-28T01:00")
    assert parsed.nonexistent_shifted == 1
    assert "skipped DST hour" in parsed.notes[0]


def test_local_clock_without_dst_rows_has_no_notes() -> None:
    parsed = parse_timestamps(
        pd.Series(local_range("2021-06-01", "2021-06-02", "h")), "Europe/Berlin"
    )

    assert parsed.notes == ()


def test_declared_period_widened_over_repeated_hour() -> None:
    start, end = period_in_utc(
        pd.Timestamp("2021-10-31T02:10").to_pydatetime(),
        pd.Timestamp("2021-10-31T02:20").to_pydatetime(),
        "Europe/Berlin",
    )

    assert start == utc("2021-10-31T00:10")
    assert end == utc("2021-10-31T01:20")


def test_declared_period_with_offset_kept() -> None:
    start, _ = period_in_utc(
        pd.Timestamp("2021-06-01T02:00+02:00").to_pydatetime(),
        pd.Timestamp("2021-06-01T03:00+02:00").to_pydatetime(),
        "America/New_York",
    )

    assert start == utc("2021-06-01T00:00")


# Step inference --------------------------------------------------------------------------


def test_infer_step_uses_median_spacing() -> None:
    times = pd.DatetimeIndex(
        [
            utc(t)
            for t in [
                "2021-01-01T00:00",
                "2021-01-01T00:05",
                "2021-01-01T00:10",
                "2021-01-01T01:00",
            ]
        ]
    )

    assert infer_step(times) == pd.Timedelta(minutes=5)


def test_infer_step_ignores_duplicates() -> None:
    times = pd.DatetimeIndex([utc("2021-01-01T00:00")] * 3 + [utc("2021-01-01T00:10")])

    assert infer_step(times) == pd.Timedelta(minutes=10)


def test_infer_step_rounds_to_whole_seconds() -> None:
    times = pd.DatetimeIndex([utc("2021-01-01T00:00:00"), utc("2021-01-01T00:00:59.7")])

    assert infer_step(times) == pd.Timedelta(seconds=60)


def test_infer_step_needs_two_timestamps() -> None:
    with pytest.raises(DataError, match="request a step explicitly"):
        infer_step(pd.DatetimeIndex([utc("2021-01-01")]))


# Grid ------------------------------------------------------------------------------------


def test_grid_aligned_to_epoch() -> None:
    step = pd.Timedelta(minutes=7)
    trace = samples([1.0, 2.0], ["2021-01-01T00:00", "2021-01-01T01:00"])

    grid = to_grid(trace, step)

    assert (pd.DatetimeIndex(grid.index).as_unit("ns").asi8 % step.value == 0).all()


def test_grid_index_is_regular_utc() -> None:
    trace = samples([1.0, 2.0, 3.0], ["2021-01-01T00:00", "2021-01-01T00:01", "2021-01-01T00:05"])

    grid = to_grid(trace, MINUTE)

    assert str(pd.DatetimeIndex(grid.index).tz) == "UTC"
    assert (np.diff(pd.DatetimeIndex(grid.index).as_unit("ns").asi8) == MINUTE.value).all()


def test_off_grid_sample_floored_to_its_step() -> None:
    trace = samples([5.0], ["2021-01-01T14:01:13"])

    grid = to_grid(trace, MINUTE)

    assert grid.to_dict() == {utc("2021-01-01T14:01"): 5.0}


def test_missing_grid_step_is_nan_not_zero() -> None:
    trace = samples([1.0, 3.0], ["2021-01-01T00:00", "2021-01-01T00:03"])

    grid = to_grid(trace, MINUTE)

    assert grid.isna().tolist() == [False, True, True, False]


def test_coarser_step_averages_samples() -> None:
    times = ["2021-01-01T00:00", "2021-01-01T00:01", "2021-01-01T00:02", "2021-01-01T00:03"]
    trace = samples([1.0, 3.0, 10.0, 20.0], times)

    grid = to_grid(trace, pd.Timedelta(minutes=2), sample_step=MINUTE)

    assert grid.tolist() == [2.0, 15.0]


def test_coarser_step_ignores_missing_samples() -> None:
    trace = samples([4.0, np.nan], ["2021-01-01T00:00", "2021-01-01T00:01"])

    grid = to_grid(trace, pd.Timedelta(minutes=2), sample_step=MINUTE)

    assert grid.tolist() == [4.0]


def test_coarser_step_with_only_missing_samples_is_nan() -> None:
    trace = samples(
        [np.nan, np.nan, 1.0], ["2021-01-01T00:00", "2021-01-01T00:01", "2021-01-01T00:02"]
    )

    grid = to_grid(trace, pd.Timedelta(minutes=2), sample_step=MINUTE)

    assert np.isnan(grid.iloc[0])


def test_finer_step_holds_sample_over_its_step() -> None:
    trace = samples([6.0, 8.0], ["2021-01-01T00:00", "2021-01-01T00:10"])

    grid = to_grid(
        trace,
        pd.Timedelta(minutes=5),
        end=utc("2021-01-01T00:15"),
        sample_step=pd.Timedelta(minutes=10),
    )

    assert grid.tolist() == [6.0, 6.0, 8.0, 8.0]


def test_finer_step_keeps_gap_missing() -> None:
    trace = samples([6.0, 8.0], ["2021-01-01T00:00", "2021-01-01T00:30"])

    grid = to_grid(trace, pd.Timedelta(minutes=5), sample_step=pd.Timedelta(minutes=10))

    assert grid.isna().tolist() == [False, False, True, True, True, True, False]


def test_finer_step_holds_missing_sample_as_nan() -> None:
    trace = samples(
        [6.0, np.nan, 8.0], ["2021-01-01T00:00", "2021-01-01T00:10", "2021-01-01T00:20"]
    )

    grid = to_grid(trace, pd.Timedelta(minutes=5), sample_step=pd.Timedelta(minutes=10))

    assert grid.isna().tolist() == [False, False, True, True, False]


def test_finer_uneven_step_leaves_no_hole() -> None:
    trace = samples([1.0, 2.0, 3.0], ["2021-01-01T00:00", "2021-01-01T00:10", "2021-01-01T00:20"])

    grid = to_grid(trace, pd.Timedelta(minutes=3), sample_step=pd.Timedelta(minutes=10))

    assert grid.notna().all()


def test_window_outside_samples_is_nan() -> None:
    trace = samples([1.0], ["2021-01-01T00:02"])

    grid = to_grid(trace, MINUTE, start=utc("2021-01-01T00:00"), end=utc("2021-01-01T00:04"))

    assert grid.isna().tolist() == [True, True, False, True, True]


def test_window_bounds_snap_inside() -> None:
    trace = samples([1.0], ["2021-01-01T00:02"])

    grid = to_grid(trace, MINUTE, start=utc("2021-01-01T00:00:30"), end=utc("2021-01-01T00:03:30"))

    assert list(grid.index) == [
        utc("2021-01-01T00:01"),
        utc("2021-01-01T00:02"),
        utc("2021-01-01T00:03"),
    ]


def test_non_positive_step_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        to_grid(samples([1.0], ["2021-01-01"]), pd.Timedelta(0))


def test_regrid_description_names_both_steps() -> None:
    note = describe_regrid(MINUTE, pd.Timedelta(minutes=10))

    assert (
        note == "each sample (every 10 min) was held constant over the 1 min grid steps it covers"
    )


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (45, "45 s"),
        (600, "10 min"),
        (309_000, "3 d 13 h 50 min"),
        (7_200, "2 h"),
        (90_061, "1 d 1 h 1 min"),
    ],
)
def test_format_span_whole_units(seconds: int, expected: str) -> None:
    assert format_span(pd.Timedelta(seconds=seconds)) == expected


def jittered(seconds: np.ndarray, start: str = "2024-03-01") -> pd.DatetimeIndex:
    base = pd.Timestamp(start, tz="UTC")
    return pd.DatetimeIndex([base + pd.Timedelta(seconds=float(s)) for s in seconds])


def test_snap_jitter_moves_to_nearest_point() -> None:
    rng = np.random.default_rng(7)
    nominal = np.arange(0, 600 * 60, 60)
    times = jittered(nominal + rng.uniform(-2, 2, len(nominal)))

    snapped, note = snap_jitter(times, pd.Timedelta(minutes=1))

    assert list(snapped) == list(jittered(nominal))
    assert note is not None
    assert "sample grid" in note


def test_snap_jitter_keeps_a_constant_phase() -> None:
    times = jittered(np.arange(30, 600 * 60, 60))  # every sample at :30

    snapped, note = snap_jitter(times, pd.Timedelta(minutes=1))

    assert note is None
    assert snapped.equals(times)


def test_snap_jitter_centres_irregular_samples() -> None:
    rng = np.random.default_rng(3)
    nominal = np.arange(0, 600 * 200, 600)
    times = jittered(nominal + rng.uniform(-200, 200, len(nominal)))

    snapped, _ = snap_jitter(times, pd.Timedelta(minutes=10))

    assert list(snapped) == list(jittered(nominal))

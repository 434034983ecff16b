"""Parse trace timestamps to UTC and place samples on the epoch-aligned history grid.

The grid is the one ``History`` uses: UTC, a constant ``step``, and every grid point a whole
multiple of ``step`` since the Unix epoch. A grid point labels the interval
``[point, point + step)``, so a sample belongs to the grid point at or before it (floor).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.errors import DataError
from forecaster.history import empty_grid

logger = logging.getLogger(__name__)

UTC = "UTC"

# A time of day followed by 'Z' or a UTC offset such as +02:00, +0200 or -05. The time part
# is required so that the day of a date-only value such as 2020-01-01 is not read as an offset.
OFFSET_PATTERN = re.compile(
    r"[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)\s*$",
    re.IGNORECASE,
)


class InvalidTimestampError(DataError):
    """A timestamp cell that is empty or not ISO 8601. ``row`` counts data rows from 1."""

    def __init__(self, row: int, value: object) -> None:
        self.row = row
        self.value = value
        super().__init__(
            f"data row {row}: invalid timestamp {value!r}. Expected ISO 8601 such as "
            "2020-05-01T00:00:00, optionally with an offset such as +02:00 or Z"
        )


@dataclass(frozen=True)
class ParsedTimestamps:
    """Timestamps converted to UTC in input order, with the DST corrections that were needed.

    ``ambiguous_by_order`` and ``ambiguous_by_rule`` count local times in a repeated
    (fall-back) hour, and ``nonexistent_shifted`` counts local times in a skipped
    (spring-forward) hour. ``notes`` states each nonzero count in words.
    """

    utc: pd.DatetimeIndex
    ambiguous_by_order: int = 0
    ambiguous_by_rule: int = 0
    nonexistent_shifted: int = 0
    notes: tuple[str, ...] = ()


def parse_timestamps(raw: pd.Series, timezone: str = UTC) -> ParsedTimestamps:
    """Parse ISO 8601 timestamps and convert them to UTC.

    A timestamp with an offset (or Z) is converted with that offset. A timestamp without one
    is local time in the IANA zone ``timezone``, and ``localize`` describes how DST is resolved.
    Raises InvalidTimestampError for the first empty or unparsable cell.
    """
    text = pd.Series(raw, dtype="str").reset_index(drop=True).str.strip()
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    _check_parsed(text, parsed)

    utc = pd.DatetimeIndex(parsed).as_unit("ns")
    naive = ~text.str.contains(OFFSET_PATTERN).to_numpy(dtype=bool)
    if timezone == UTC or not naive.any():
        return ParsedTimestamps(utc)

    # With utc=True pandas reads a naive value as UTC, so dropping the zone gives back the
    # wall-clock time as written.
    localized = localize(utc[naive].tz_localize(None), timezone)
    values = utc.asi8.copy()
    values[naive] = localized.utc.asi8
    return ParsedTimestamps(
        utc=pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize(UTC),
        ambiguous_by_order=localized.ambiguous_by_order,
        ambiguous_by_rule=localized.ambiguous_by_rule,
        nonexistent_shifted=localized.nonexistent_shifted,
        notes=localized.notes,
    )


def _check_parsed(text: pd.Series, parsed: pd.Series) -> None:
    # History indexes are in nanoseconds, which reach only from 1677 to 2262.
    outside = (parsed < pd.Timestamp.min.tz_localize(UTC)) | (
        parsed > pd.Timestamp.max.tz_localize(UTC)
    )
    invalid = (parsed.isna() | outside).to_numpy(dtype=bool)
    if invalid.any():
        position = int(np.flatnonzero(invalid)[0])
        value = text.iloc[position]
        raise InvalidTimestampError(position + 1, "" if pd.isna(value) else value)


def localize(wall: pd.DatetimeIndex, timezone: str) -> ParsedTimestamps:
    """Read naive wall-clock times in ``timezone`` and convert them to UTC.

    A local time in the repeated hour of a fall-back transition is ambiguous. Each run of
    consecutive ambiguous rows is resolved by row order where pandas' ``ambiguous="infer"``
    succeeds on it: times before the clock goes back are summer time, times after it are
    standard time. Otherwise the rule is that the first row with a given wall time is summer
    time (the earlier instant) and later rows with the same wall time are standard time.
    A local time in the skipped hour of a spring-forward transition does not exist and is
    shifted forward to the first valid time after the gap (02:30 becomes 03:00 in Berlin).
    """
    ambiguous = np.asarray(
        wall.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward").isna()
    )
    unplaced = np.asarray(wall.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").isna())
    skipped = unplaced & ~ambiguous
    summer_time = np.zeros(len(wall), dtype=bool)
    by_order = by_rule = 0
    for run in _runs(np.flatnonzero(ambiguous)):
        flags, inferred = _resolve_repeated_hour(wall[run], timezone)
        summer_time[run] = flags
        if inferred:
            by_order += len(run)
        else:
            by_rule += len(run)

    local = wall.tz_localize(timezone, ambiguous=summer_time, nonexistent="shift_forward")
    notes = _dst_notes(timezone, by_order, by_rule, int(skipped.sum()))
    for note in notes:
        logger.info("timestamps: %s", note)
    return ParsedTimestamps(
        utc=local.tz_convert(UTC).as_unit("ns"),
        ambiguous_by_order=by_order,
        ambiguous_by_rule=by_rule,
        nonexistent_shifted=int(skipped.sum()),
        notes=notes,
    )


def _runs(positions: np.ndarray) -> list[np.ndarray]:
    """Split sorted row positions into runs of consecutive positions."""
    if len(positions) == 0:
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    return np.split(positions, breaks)


def _resolve_repeated_hour(wall: pd.DatetimeIndex, timezone: str) -> tuple[np.ndarray, bool]:
    """Return a summer-time flag per ambiguous time, and whether row order decided them."""
    summer = wall.tz_localize(timezone, ambiguous=np.ones(len(wall), dtype=bool))
    try:
        inferred = wall.tz_localize(timezone, ambiguous="infer")
    except ValueError:
        # Row order shows no single step back in the wall clock when only one pass of the
        # hour is present, or with duplicate or out-of-order rows. The first-occurrence rule
        # decides then.
        first_seen = ~pd.Index(wall).duplicated(keep="first")
        return np.asarray(first_seen, dtype=bool), False
    return np.asarray(inferred == summer, dtype=bool), True


def _dst_notes(timezone: str, by_order: int, by_rule: int, skipped: int) -> tuple[str, ...]:
    notes = []
    if by_order:
        notes.append(
            f"{by_order} local times in {timezone} fell in a repeated DST hour and were "
            "resolved by row order"
        )
    if by_rule:
        notes.append(
            f"{by_rule} local times in {timezone} fell in a repeated DST hour that row order "
            "could not resolve; the first row of each wall time was read as summer time and "
            "later rows as standard time"
        )
    if skipped:
        notes.append(
            f"{skipped} local times in {timezone} fell in a skipped DST hour and were shifted "
            "forward to the end of the gap"
        )
    return tuple(notes)


def period_in_utc(
    start: dt.datetime, end: dt.datetime, timezone: str = UTC
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Convert a declared period to UTC, reading naive bounds in ``timezone``.

    An ambiguous naive bound is widened, so ``start`` takes the earlier instant and ``end``
    the later one. The period then covers every sample that may belong to it.
    """
    return (
        _bound_in_utc(pd.Timestamp(start), timezone, earlier=True),
        _bound_in_utc(pd.Timestamp(end), timezone, earlier=False),
    )


def _bound_in_utc(moment: pd.Timestamp, timezone: str, *, earlier: bool) -> pd.Timestamp:
    if moment.tzinfo is None:
        moment = moment.tz_localize(timezone, ambiguous=earlier, nonexistent="shift_forward")
    return moment.tz_convert(UTC)


def as_utc(moment: pd.Timestamp | dt.datetime | str) -> pd.Timestamp:
    """Convert ``moment`` to a UTC timestamp. A naive value is taken to be UTC already."""
    timestamp = pd.Timestamp(moment)
    if timestamp.tzinfo is None:
        return timestamp.tz_localize(UTC)
    return timestamp.tz_convert(UTC)


def infer_step(times: pd.DatetimeIndex) -> pd.Timedelta:
    """Return the median spacing of the distinct ``times``, rounded to whole seconds (>= 1 s).

    The median ignores gaps and a few irregular samples. Raises DataError when fewer than two
    distinct times exist, because no spacing can be measured then.
    """
    distinct = np.unique(times.as_unit("ns").asi8)
    if len(distinct) < 2:
        raise DataError(
            f"cannot infer the sample step from {len(distinct)} distinct timestamp(s), so "
            "request a step explicitly"
        )
    median = pd.Timedelta(int(np.median(np.diff(distinct))), unit="ns")
    return max(median.round("1s"), pd.Timedelta(seconds=1))


def snap_jitter(times: pd.DatetimeIndex, step: pd.Timedelta) -> tuple[pd.DatetimeIndex, str | None]:
    """Move each time to the nearest point of the sample grid that the times share.

    Exported metrics often carry timestamps a second or two off their nominal step. Placed on
    the grid by floor, a sample 1 s early lands in the step before its own, so one step gets
    two samples and the next none, and coverage drops although no sample is missing. The
    shared grid is ``step`` apart at the times' mean phase (the circular mean of each time
    modulo ``step``, in whole seconds), so a trace whose samples all sit at :30 keeps them
    there. A mean phase within a tenth of a step of the epoch-aligned grid counts as that
    grid. Returns the moved times and a note that gives how many moved, or None when none did.
    """
    if len(times) < 2 or step < pd.Timedelta(seconds=2):
        return times, None
    step_ns = step.value
    ns = times.as_unit("ns").asi8
    angles = 2 * np.pi * (ns % step_ns) / step_ns
    mean_angle = np.arctan2(np.sin(angles).mean(), np.cos(angles).mean())
    phase = round(float(mean_angle % (2 * np.pi)) / (2 * np.pi) * step_ns) % step_ns
    # A phase within a tenth of a step of the epoch grid is jitter around it, not an offset.
    if min(phase, step_ns - phase) < step_ns // 10:
        phase = 0
    else:
        phase = round(phase / 1e9) * 1_000_000_000 % step_ns
    offset = (ns - phase) % step_ns
    shift = np.where(offset <= step_ns // 2, -offset, step_ns - offset)
    moved = int(np.count_nonzero(shift))
    if moved == 0:
        return times, None
    snapped = pd.DatetimeIndex(ns + shift, tz=UTC).as_unit("ns")
    largest = pd.Timedelta(int(np.abs(shift).max()), unit="ns")
    note = (
        f"{moved} timestamps were off the trace's {format_duration(step)} sample grid by up to "
        f"{largest.total_seconds():g} s and were moved to its nearest point"
    )
    return snapped, note


def to_grid(
    samples: pd.Series,
    step: pd.Timedelta,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    sample_step: pd.Timedelta | None = None,
) -> pd.Series:
    """Place samples on the epoch-aligned UTC grid at ``step`` covering [start, end].

    ``samples`` has a sorted, unique UTC index and NaN for missing values. ``start`` and
    ``end`` default to the first and last sample. When ``step`` is at least ``sample_step``
    (or ``sample_step`` is unknown), the samples inside each grid step are averaged, which
    suits rates and levels. A step whose samples are all missing, or that has none, is NaN.
    When ``step`` is finer than ``sample_step``, each sample is held constant over its own
    ``sample_step`` (see ``hold_per_step``). Raises ValueError for a step that is not positive.
    """
    if step <= pd.Timedelta(0):
        raise ValueError(f"step must be a positive duration, got {step}")
    grid = _grid_for(samples, step, start, end)
    if len(samples) == 0 or len(grid) == 0:
        return pd.Series(np.nan, index=grid, dtype=float)
    if sample_step is not None and step < sample_step:
        return hold_per_step(samples, step, sample_step, grid)
    return mean_per_step(samples, step, grid)


def _grid_for(
    samples: pd.Series,
    step: pd.Timedelta,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> pd.DatetimeIndex:
    if start is None or end is None:
        if len(samples) == 0:
            return pd.DatetimeIndex([], tz=UTC).as_unit("ns")
        start = samples.index[0].floor(step) if start is None else start
        end = samples.index[-1] if end is None else end
    return empty_grid(as_utc(start), as_utc(end), step).as_unit("ns")


def mean_per_step(samples: pd.Series, step: pd.Timedelta, grid: pd.DatetimeIndex) -> pd.Series:
    """Average the present samples inside each grid step; steps without one stay NaN."""
    labels = pd.DatetimeIndex(samples.index).as_unit("ns").floor(step)
    means = samples.groupby(labels).mean()
    return means.reindex(grid).astype(float)


def hold_per_step(
    samples: pd.Series,
    step: pd.Timedelta,
    sample_step: pd.Timedelta,
    grid: pd.DatetimeIndex,
) -> pd.Series:
    """Hold each sample's value on the finer grid over the ``sample_step`` it stands for.

    A sample placed at grid point ``p`` covers ``ceil(sample_step / step)`` grid points from
    ``p`` on, unless the next sample starts earlier. The grid points of a missing sample,
    and those that no sample covers (a gap in the trace), stay NaN.
    """
    points = pd.DatetimeIndex(pd.DatetimeIndex(samples.index).as_unit("ns").floor(step).unique())
    per_point = mean_per_step(samples, step, points)
    held_points = -(-sample_step.value // step.value)
    sample_ns = points.asi8
    grid_ns = grid.as_unit("ns").asi8

    owner = np.searchsorted(sample_ns, grid_ns, side="right") - 1
    owner_clipped = np.clip(owner, 0, None)
    covered = (owner >= 0) & (grid_ns - sample_ns[owner_clipped] < held_points * step.value)
    values = np.where(covered, per_point.to_numpy(dtype=float)[owner_clipped], np.nan)
    return pd.Series(values, index=grid, dtype=float)


def describe_regrid(step: pd.Timedelta, sample_step: pd.Timedelta | None) -> str | None:
    """Describe in words how samples at ``sample_step`` were placed on a ``step`` grid."""
    if sample_step is None or step == sample_step:
        return None
    if step > sample_step:
        return (
            f"samples every {format_duration(sample_step)} were averaged into grid steps of "
            f"{format_duration(step)}"
        )
    return (
        f"each sample (every {format_duration(sample_step)}) was held constant over the "
        f"{format_duration(step)} grid steps it covers"
    )


def format_duration(duration: pd.Timedelta) -> str:
    """Format a duration in its largest whole unit, such as 30 s, 10 min, 2 h or 7 d."""
    for unit, seconds in (("d", 86_400), ("h", 3_600), ("min", 60)):
        count, rest = divmod(duration.total_seconds(), seconds)
        if count and not rest:
            return f"{count:g} {unit}"
    return f"{duration.total_seconds():g} s"


def format_span(duration: pd.Timedelta) -> str:
    """Format a duration in whole days, hours and minutes, such as ``3 d 13 h 50 min``.

    Spans under a minute are given in seconds. Seconds are dropped from longer spans, and
    units that are zero are left out.
    """
    total = round(duration.total_seconds())
    if total < 60:
        return f"{total} s"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts)

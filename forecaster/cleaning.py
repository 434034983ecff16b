"""Clean raw samples before they go on the grid, and count every change.

``clean`` sorts the samples by time and keeps the last of duplicate timestamps. It marks a
value as missing (NaN) when it is not finite, when the trace declares it as 'no data', when
it is negative (demand never is), or when it is an implausible spike. Nothing is ever
replaced by 0, and the counts end up in a ``CleaningReport``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecaster.history import CleaningReport

logger = logging.getLogger(__name__)

# Reason labels in ``Cleaned.reasons``. A sample kept as read has the label "".
NON_FINITE = "non_finite"
DECLARED_MISSING = "declared_missing"
NEGATIVE = "negative"
SPIKE = "spike"


@dataclass(frozen=True)
class SpikeRule:
    """When a sample counts as an implausible spike rather than real demand.

    The reference of a sample is the ``level`` quantile of the present samples in the
    trailing ``window``, the sample itself excluded. It needs ``min_samples`` samples in the
    window, so the first samples of a series are never judged. A sample above ``ratio`` times
    a reference that is above 0 starts an excursion. The excursion lasts while the series
    stays above that same threshold, and it is removed as a spike only when the series comes
    back below it within ``max_duration``. An excursion that lasts longer is a level shift or
    a real peak and keeps its values.

    The defaults leave daily peaks alone, because the peaks of the previous days sit in the
    7-day window, and they catch the short bursts that series churn or counter resets
    produce in rate queries. ``min_samples`` is 100 so that, on average, at least one sample
    lies above the 99th percentile that is used as the reference.
    """

    ratio: float = 20.0
    level: float = 0.99
    window: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=7))
    min_samples: int = 100
    max_duration: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=1))

    def __post_init__(self) -> None:
        if not self.ratio > 1:
            raise ValueError(f"spike ratio must be above 1, got {self.ratio}")
        if not 0 < self.level < 1:
            raise ValueError(f"spike quantile level must be in (0, 1), got {self.level}")
        if self.window <= pd.Timedelta(0):
            raise ValueError(f"spike window must be a positive duration, got {self.window}")
        if self.min_samples < 1:
            raise ValueError(f"spike min_samples must be at least 1, got {self.min_samples}")
        if self.max_duration <= pd.Timedelta(0):
            raise ValueError(
                f"spike max_duration must be a positive duration, got {self.max_duration}"
            )


DEFAULT_SPIKE_RULE = SpikeRule()


@dataclass(frozen=True)
class Cleaned:
    """A cleaned series and what was changed to get it.

    ``values`` has a sorted, unique UTC index and NaN for every missing sample. ``reasons``
    labels each of those timestamps with why it was marked missing (one of the module's
    reason constants) or "" when it was kept as read. ``duplicates`` and ``out_of_order``
    hold the timestamps of rows that were dropped as duplicates or arrived out of order.
    """

    values: pd.Series
    reasons: pd.Series
    duplicates: pd.DatetimeIndex
    out_of_order: pd.DatetimeIndex

    @property
    def report(self) -> CleaningReport:
        """Counts over the whole series."""
        return _count(self.reasons, self.duplicates, self.out_of_order)

    def report_between(self, start: pd.Timestamp, stop: pd.Timestamp) -> CleaningReport:
        """Count only the changes at timestamps in [start, stop)."""
        reasons = self.reasons[(self.reasons.index >= start) & (self.reasons.index < stop)]
        duplicates = self.duplicates[(self.duplicates >= start) & (self.duplicates < stop)]
        late = self.out_of_order[(self.out_of_order >= start) & (self.out_of_order < stop)]
        return _count(reasons, duplicates, late)


def _count(
    reasons: pd.Series, duplicates: pd.DatetimeIndex, out_of_order: pd.DatetimeIndex
) -> CleaningReport:
    counts = reasons.value_counts()
    return CleaningReport(
        duplicates_dropped=len(duplicates),
        out_of_order_sorted=len(out_of_order),
        non_finite_dropped=int(counts.get(NON_FINITE, 0)),
        negative_dropped=int(counts.get(NEGATIVE, 0)),
        declared_missing=int(counts.get(DECLARED_MISSING, 0)),
        spikes_dropped=int(counts.get(SPIKE, 0)),
    )


def clean(
    samples: pd.Series,
    *,
    missing_values: Iterable[float] = (),
    missing_periods: Sequence[tuple[pd.Timestamp, pd.Timestamp]] = (),
    spike_rule: SpikeRule | None = DEFAULT_SPIKE_RULE,
) -> Cleaned:
    """Clean ``samples``, a numeric series indexed by UTC timestamps in the order read.

    ``missing_values`` are values the trace uses for 'no data' (an outage recorded as 0,
    for example). ``missing_periods`` are UTC (start, end) pairs, both ends included, whose
    samples are 'no data'. Both count as declared missing. ``spike_rule`` None turns spike
    removal off. A sample is counted under the first reason that applies, in the order
    non-finite, declared missing, negative, spike.
    """
    ordered, out_of_order = _sort_by_time(samples)
    unique, duplicates = _keep_last_duplicate(ordered)
    values = unique.astype(float)
    reasons = pd.Series("", index=values.index, dtype="str")

    # An empty cell is already NaN, and it is counted here too.
    non_finite = ~np.isfinite(values.to_numpy())
    values[non_finite] = np.nan
    reasons[non_finite] = NON_FINITE
    declared = _declared_missing(values, list(missing_values), missing_periods)
    _mark(values, reasons, declared, DECLARED_MISSING)
    _mark(values, reasons, (values < 0).to_numpy(), NEGATIVE)
    if spike_rule is not None:
        _mark(values, reasons, find_spikes(values, spike_rule), SPIKE)

    cleaned = Cleaned(values, reasons, duplicates, out_of_order)
    logger.debug("cleaned %d samples: %s", len(samples), cleaned.report)
    return cleaned


def _sort_by_time(samples: pd.Series) -> tuple[pd.Series, pd.DatetimeIndex]:
    """Sort stably so that duplicates keep their file order.

    Also return the timestamps of rows that came after a row with a later timestamp.
    """
    times = pd.DatetimeIndex(samples.index).as_unit("ns")
    stamps = times.asi8
    late = np.zeros(len(stamps), dtype=bool)
    if len(stamps) > 1:
        late[1:] = stamps[1:] < np.maximum.accumulate(stamps)[:-1]
    ordered = pd.Series(samples.to_numpy(), index=times).sort_index(kind="stable")
    return ordered, times[late]


def _keep_last_duplicate(ordered: pd.Series) -> tuple[pd.Series, pd.DatetimeIndex]:
    dropped = ordered.index.duplicated(keep="last")
    return ordered[~dropped], pd.DatetimeIndex(ordered.index[dropped])


def _mark(values: pd.Series, reasons: pd.Series, mask: np.ndarray, reason: str) -> None:
    """Set present values under ``mask`` to NaN and label them with ``reason``, in place."""
    hit = np.asarray(mask, dtype=bool) & values.notna().to_numpy()
    values[hit] = np.nan
    reasons[hit] = reason


def _declared_missing(
    values: pd.Series,
    missing_values: list[float],
    missing_periods: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
) -> np.ndarray:
    declared = np.isin(values.to_numpy(), missing_values)
    times = pd.DatetimeIndex(values.index)
    for start, end in missing_periods:
        declared |= (times >= start) & (times <= end)
    return declared


def find_spikes(values: pd.Series, rule: SpikeRule, *, max_passes: int = 3) -> np.ndarray:
    """Flag the samples that ``rule`` calls spikes; ``values`` is sorted with NaN for missing.

    Each pass recomputes the references without the spikes found so far, because a removed
    spike should not raise the threshold for the samples after it.

    NOTE: an excursion still open at the end of the series, and younger than
    ``rule.max_duration``, is flagged because it cannot be checked for a return yet. Data
    that arrives later decides whether it was a spike.
    """
    present = values.notna().to_numpy()
    flagged = np.zeros(len(values), dtype=bool)
    for _ in range(max_passes):
        remaining = present & ~flagged
        found = _spike_pass(values[remaining], rule)
        if not found.any():
            break
        positions = np.flatnonzero(remaining)
        flagged[positions[found]] = True
    return flagged


def _spike_pass(present: pd.Series, rule: SpikeRule) -> np.ndarray:
    """Find spikes in one pass over ``present``, a sorted series without NaN."""
    rolling = present.rolling(rule.window, closed="left", min_periods=rule.min_samples)
    # "lower" picks a sample value. Linear interpolation in a mostly idle window gives a tiny
    # positive reference between 0 and the first busy value, so any activity would be a spike.
    reference = rolling.quantile(rule.level, interpolation="lower").to_numpy()
    observed = present.to_numpy()
    times = pd.DatetimeIndex(present.index).as_unit("ns").asi8
    with np.errstate(invalid="ignore"):
        threshold = rule.ratio * reference
        starts = np.flatnonzero((observed > threshold) & (reference > 0))

    spike = np.zeros(len(observed), dtype=bool)
    resume = 0
    for first in starts.tolist():
        if first < resume:
            continue
        back = _first_at_or_below(observed, threshold[first], first + 1)
        end_time = times[back] if back < len(observed) else times[-1]
        is_short = end_time - times[first] <= rule.max_duration.value
        if is_short:
            spike[first:back] = True
        resume = back
    return spike


def _first_at_or_below(observed: np.ndarray, threshold: float, start: int) -> int:
    """Return the first position from ``start`` with a value at or below ``threshold``.

    Returns ``len(observed)`` when the series never comes back down. The search reads
    doubling chunks, so its cost grows with the distance to the match.
    """
    size = 64
    while start < len(observed):
        below = np.flatnonzero(observed[start : start + size] <= threshold)
        if len(below):
            return start + int(below[0])
        start += size
        size *= 2
    return len(observed)

"""The regular-grid history type every source returns and every model reads.

A ``History`` is one series on a regular UTC grid aligned to the Unix epoch at ``step``.
A missing sample is NaN, never 0. ``coverage`` is the share of grid points that hold a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class CleaningReport:
    """Counts of what cleaning changed, per kind, so a caller can report them."""

    duplicates_dropped: int = 0
    out_of_order_sorted: int = 0
    non_finite_dropped: int = 0
    negative_dropped: int = 0
    declared_missing: int = 0
    spikes_dropped: int = 0
    stale_dropped: int = 0
    notes: tuple[str, ...] = ()

    def total_changed(self) -> int:
        return (
            self.duplicates_dropped
            + self.out_of_order_sorted
            + self.non_finite_dropped
            + self.negative_dropped
            + self.declared_missing
            + self.spikes_dropped
            + self.stale_dropped
        )

    def merged(self, other: CleaningReport) -> CleaningReport:
        """Add the counts of ``other`` to this report."""
        return CleaningReport(
            duplicates_dropped=self.duplicates_dropped + other.duplicates_dropped,
            out_of_order_sorted=self.out_of_order_sorted + other.out_of_order_sorted,
            non_finite_dropped=self.non_finite_dropped + other.non_finite_dropped,
            negative_dropped=self.negative_dropped + other.negative_dropped,
            declared_missing=self.declared_missing + other.declared_missing,
            spikes_dropped=self.spikes_dropped + other.spikes_dropped,
            stale_dropped=self.stale_dropped + other.stale_dropped,
            notes=self.notes + other.notes,
        )


@dataclass(frozen=True)
class History:
    """One demand series on a regular UTC grid.

    ``values`` is indexed by a tz-aware UTC ``DatetimeIndex`` with a constant spacing of
    ``step``, aligned so that every timestamp is a whole multiple of ``step`` since the epoch.
    """

    name: str
    values: pd.Series
    step: pd.Timedelta
    report: CleaningReport = field(default_factory=CleaningReport)

    def __post_init__(self) -> None:
        index = self.values.index
        if not isinstance(index, pd.DatetimeIndex) or str(index.tz) != "UTC":
            raise ValueError(f"history {self.name!r}: index must be a UTC DatetimeIndex")
        # asi8 counts in the index's unit, which pandas 3 often makes microseconds, while
        # Timedelta.value is always in nanoseconds.
        spacing_ns = np.diff(index.as_unit("ns").asi8)
        if len(index) > 1 and not (spacing_ns == self.step.value).all():
            raise ValueError(f"history {self.name!r}: index is not a regular grid at {self.step}")

    @property
    def start(self) -> pd.Timestamp:
        return self.values.index[0]

    @property
    def end(self) -> pd.Timestamp:
        """Timestamp of the last grid point (inclusive)."""
        return self.values.index[-1]

    @property
    def coverage(self) -> float:
        """Share of grid points that hold a value, in [0, 1]; 0 for an empty history."""
        if len(self.values) == 0:
            return 0.0
        return float(self.values.notna().mean())

    def last_observed(self) -> pd.Timestamp | None:
        """Timestamp of the newest non-missing sample, or None when there is none."""
        observed = self.values.last_valid_index()
        return None if observed is None else pd.Timestamp(observed)  # type: ignore[arg-type]

    def until(self, cutoff: pd.Timestamp) -> History:
        """Return the history up to and including ``cutoff``: nothing after it leaks."""
        return History(self.name, self.values.loc[:cutoff], self.step, self.report)

    def between(self, start: pd.Timestamp, end: pd.Timestamp) -> History:
        """Return the grid points with ``start <= ds <= end``."""
        return History(self.name, self.values.loc[start:end], self.step, self.report)


def empty_grid(start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta) -> pd.DatetimeIndex:
    """Build the epoch-aligned UTC grid covering [start, end] at ``step``."""
    first = pd.Timestamp(start).tz_convert("UTC").ceil(step)
    last = pd.Timestamp(end).tz_convert("UTC").floor(step)
    if last < first:
        return pd.DatetimeIndex([], tz="UTC")
    return pd.date_range(first, last, freq=step, tz="UTC")

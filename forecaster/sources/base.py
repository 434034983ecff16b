"""The protocol every history source implements."""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from forecaster.history import History


class HistorySource(Protocol):
    """Reads one demand series onto the regular UTC grid.

    ``series`` is the source-specific selector: a column name for a CSV trace, a PromQL
    expression for Thanos. The result covers the epoch-aligned grid points in [start, end];
    a grid point with no sample is NaN.
    """

    def fetch(
        self,
        name: str,
        series: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: pd.Timedelta | None,
    ) -> History:
        """Read ``series``; ``step`` None keeps the source's own step where it has one."""
        ...

    def bounds(self, series: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """Return the first and last timestamps the source holds, or None when unknown."""
        ...

"""Column names and forecasting terms, declared once.

The vocabulary follows the usual forecasting libraries: ``ds`` is the timestamp, ``y`` the
observed value, ``unique_id`` the series identity, ``cutoff`` the last observation a forecast
may use, ``h`` the horizon in model steps, and a quantile ``level`` is a probability in (0, 1).
"""

from __future__ import annotations

DS = "ds"
Y = "y"
UNIQUE_ID = "unique_id"
CUTOFF = "cutoff"
YHAT = "yhat"


def quantile_column(level: float) -> str:
    """Name the column of the quantile forecast at ``level``, e.g. ``q0.9``."""
    return f"q{level:g}"

"""peakcast's exception tree, re-exported for the scaler layer (the root is in forecaster)."""

from forecaster.errors import (
    ActionRejectedError,
    ConfigError,
    DataError,
    InsufficientHistoryError,
    MissingDataError,
    PartialDataError,
    PeakcastError,
    TransientError,
)

__all__ = [
    "ActionRejectedError",
    "ConfigError",
    "DataError",
    "InsufficientHistoryError",
    "MissingDataError",
    "PartialDataError",
    "PeakcastError",
    "TransientError",
]

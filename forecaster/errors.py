"""The one exception tree of peakcast, split by what the caller does next.

``forecaster`` is the lower layer, so the root lives here and ``scaler`` imports it.

- ``ConfigError``: the configuration is invalid. Fix the config; retrying does not help.
- ``DataError``: history is missing, partial or unusable. Hold current capacity.
- ``TransientError``: a remote API failed in a way that may pass. Retry after
  ``retry_after_seconds``.
- ``ActionRejectedError``: a write was refused (conflict with another field manager, forbidden,
  invalid). Report it and leave the field alone.
"""

from __future__ import annotations


class PeakcastError(Exception):
    """Root of every error peakcast raises on purpose."""


class _Missing:
    """The value of a required key that the config leaves out."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


class ConfigError(PeakcastError):
    """Invalid configuration: names the key path, the value and what is allowed.

    A required key that is left out has the value ``MISSING``.
    """

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        if value is MISSING:
            super().__init__(f"{key}: missing: {allowed}")
        else:
            super().__init__(f"{key}: invalid value {value!r}: {allowed}")


class DataError(PeakcastError):
    """History cannot be trusted for a decision, so the caller keeps the current capacity."""


class MissingDataError(DataError):
    """No usable samples (empty result, outage, stale series)."""


class PartialDataError(DataError):
    """Some samples or chunks are missing, or the backend reported a partial response."""


class InsufficientHistoryError(DataError):
    """History is too short for the requested model (for example fewer than two seasons)."""


class TransientError(PeakcastError):
    """A remote call failed in a way that may pass (timeout, 5xx, connection refused)."""

    def __init__(self, message: str, retry_after_seconds: float = 5.0) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)


class ActionRejectedError(PeakcastError):
    """A write to the cluster was rejected and must not be retried blindly."""

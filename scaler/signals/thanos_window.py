"""Read one series over the hysteresis window through the Thanos history client.

A range query from ``now - window`` to ``now`` evaluates the expression at every step as an
instant query would, so one request returns the newest value and the samples hysteresis needs.
It goes through ``QueryClient``, which carries the source's credentials, TLS, retries and
error mapping, with ``partial_response=false`` and deduplication on.

No series at all is missing data, never zero. Several series, warnings (a partial response)
or a failed request make the signal unavailable for this read.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import pandas as pd

from forecaster.errors import PeakcastError
from forecaster.sources.thanos_http import QueryClient, RangeRequest
from scaler.signals.base import SignalUnavailableError
from scaler.signals.settings import HysteresisSettings

logger = logging.getLogger(__name__)


def query_params(dedup: bool) -> dict[str, str]:
    """Return the parameters of every signal query: no partial responses, Thanos dedup."""
    return {"partial_response": "false", "dedup": str(dedup).lower()}


def window_seconds(rule: HysteresisSettings, step_seconds: int) -> int:
    """Return a window long enough for a run to hold: ``hold_seconds`` and ``min_samples``."""
    steps = max(math.ceil(rule.hold_seconds / step_seconds), rule.min_samples - 1, 0)
    return steps * step_seconds


def read_window(
    client: QueryClient,
    query: str,
    now: pd.Timestamp,
    *,
    window: int,
    step_seconds: int,
    params: Mapping[str, str],
    description: str,
    key: str,
) -> pd.Series:
    """Return the series on the grid ``now - window, ..., now``; a step without data is NaN.

    ``now`` is floored to whole seconds, because the client sends whole-second bounds.
    """
    now = now.floor("s")
    start = now - pd.Timedelta(seconds=window)
    request = RangeRequest(
        query=query,
        start=start,
        end=now,
        step_seconds=step_seconds,
        params=dict(params),
        description=description,
        key=key,
    )
    try:
        response = client.query_range(request)
    except PeakcastError as error:
        raise SignalUnavailableError(str(error)) from error
    if response.warnings:
        raise SignalUnavailableError(
            f"{description}: partial response, warnings: {'; '.join(response.warnings)}"
        )
    if not response.result:
        raise SignalUnavailableError(
            f"{description}: the query returned no series (missing, not zero): {query}"
        )
    if len(response.result) > 1:
        raise SignalUnavailableError(
            f"{description}: the query returned {len(response.result)} series; aggregate it "
            f"to one, e.g. with avg() or sum(): {query}"
        )
    grid = pd.date_range(start, now, freq=pd.Timedelta(seconds=step_seconds), tz="UTC")
    found: dict[pd.Timestamp, float] = {}
    for stamp, text in response.result[0].get("values") or []:
        found[pd.Timestamp(float(stamp), unit="s", tz="UTC").round("s")] = _number(text)
    return pd.Series([found.get(at, math.nan) for at in grid], index=grid, dtype=float)


def _number(text: object) -> float:
    try:
        value = float(str(text))
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan

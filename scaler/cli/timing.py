"""Resolve the time a command works at: ``--at`` if given, else the trace end or now."""

from __future__ import annotations

import pandas as pd

from forecaster.errors import ConfigError
from scaler.cli.common import parse_timestamp
from scaler.histories import HistoryLoader, trace_span
from scaler.settings import Settings, WorkloadSettings


def wall_clock_now() -> pd.Timestamp:
    """Read the wall clock; only the CLI and the service call this, never decision logic."""
    return pd.Timestamp.now(tz="UTC")


def resolve_at(
    at: str | None,
    settings: Settings,
    loader: HistoryLoader,
    workloads: list[WorkloadSettings],
) -> pd.Timestamp:
    """Return ``--at`` in UTC; without it, the end of the traces, or now for live sources.

    A trace ends where its newest row's step ends, so the default time uses that row.
    """
    span = trace_span(loader, workloads, through_last_step=True)
    if at is None:
        return span[1] if span is not None else wall_clock_now()
    stamp = parse_timestamp(at, settings.timezone)
    if span is not None and not span[0] <= stamp <= span[1]:
        raise ConfigError(
            "--at",
            at,
            f"a time inside the trace, from {span[0].isoformat()} to {span[1].isoformat()}",
        )
    return stamp

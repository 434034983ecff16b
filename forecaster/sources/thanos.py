"""The ``thanos`` history source: demand history from Thanos Query or Prometheus.

``fetch`` reads one workload's demand query onto the UTC grid and returns it as a
``History``. Long ranges are split into chunks of at most 11,000 points that are fetched
concurrently and stitched on the grid. Each chunk requests the source resolution its age
allows, with ``partial_response=false`` and deduplication over the configured replica
labels.

What comes back is classified, never silently repaired:

- a response with warnings is partial: ``ThanosPartialDataError``;
- no sample at all: ``ThanosMissingDataError``;
- more than one series after merging replicas: ``UnexpectedSeriesError``;
- NaN/Inf values, points that repeat the last sample of a stopped series, and spikes are
  missing (NaN) and counted;
- everything is stated in a ``FetchReport`` (``fetch_with_report``, ``last_report``).

Missing or partial data never becomes 0.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

import pandas as pd

from forecaster.cleaning import DEFAULT_SPIKE_RULE, SpikeRule, clean
from forecaster.history import CleaningReport, History
from forecaster.settings import ThanosSourceSettings
from forecaster.sources.auth import Secrets
from forecaster.sources.thanos_fetch import FrameFetcher
from forecaster.sources.thanos_http import QueryClient
from forecaster.sources.thanos_report import (
    ChunkReport,
    FetchReport,
    SeriesReport,
    ThanosMissingDataError,
    ThanosPartialDataError,
    UnexpectedSeriesError,
)

__all__ = [
    "ChunkReport",
    "FetchReport",
    "SeriesReport",
    "ThanosMissingDataError",
    "ThanosPartialDataError",
    "ThanosSource",
    "UnexpectedSeriesError",
]

logger = logging.getLogger(__name__)

MAX_WARNINGS_IN_MESSAGE = 3


def utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


class ThanosSource:
    """Reads demand history through the Prometheus HTTP API of Thanos Query.

    ``key_prefix`` is the config path of the settings (``sources.thanos``) for error
    messages. ``spike_rule`` None turns spike removal off. ``clock`` returns the current UTC
    time that chunk ages are measured from, and ``sleep`` waits between retries; both are
    parameters so tests control them.
    """

    def __init__(
        self,
        settings: ThanosSourceSettings,
        *,
        key_prefix: str = "",
        spike_rule: SpikeRule | None = DEFAULT_SPIKE_RULE,
        clock: Callable[[], pd.Timestamp] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._spike_rule = spike_rule
        self._secrets = Secrets(settings, key_prefix)
        self._client = QueryClient(settings, self._secrets, key_prefix=key_prefix, sleep=sleep)
        self._fetcher = FrameFetcher(settings, self._client, clock)
        self._lock = threading.Lock()
        self._reports: dict[str, FetchReport] = {}

    def __repr__(self) -> str:
        return f"ThanosSource(url={self._settings.url!r})"

    def __enter__(self) -> ThanosSource:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def fetch(
        self,
        name: str,
        series: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: pd.Timedelta | None,
    ) -> History:
        """Read the demand query ``series`` of workload ``name`` onto the grid in [start, end].

        Raises the errors listed in the module docstring, ConfigError for an invalid query,
        range or step, and TransientError when the server stays unreachable.
        """
        history, _ = self.fetch_with_report(name, series, start, end, step)
        return history

    def fetch_with_report(
        self,
        name: str,
        series: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: pd.Timedelta | None,
    ) -> tuple[History, FetchReport]:
        """Like ``fetch``, and also return the report of what was classified."""
        frame, report = self._fetcher.fetch(name, series, start, end, step)
        self._remember(name, report)
        values = self._single_series(name, frame, report)
        cleaned = clean(values, spike_rule=self._spike_rule)
        # clean() counts every NaN grid point as non-finite. Here a NaN grid point is a
        # missing sample, and the report already counts the NaN/Inf values the server sent.
        cleaning = dataclasses.replace(cleaned.report, non_finite_dropped=0)
        history = History(
            name,
            cleaned.values.rename(name),
            report.step,
            _cleaning_report(report).merged(cleaning),
        )
        logger.info(
            "workload %s: fetched from Thanos: %s; coverage %.1f%%",
            name,
            report.summary(),
            100 * history.coverage,
        )
        return history, report

    def fetch_frame(
        self,
        name: str,
        query: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: pd.Timedelta | None,
    ) -> tuple[pd.DataFrame, FetchReport]:
        """Read every series ``query`` returns, one column each, without cleaning.

        Warnings and empty results are stated in the report, not raised, so the caller
        decides; check ``report.partial`` before using the frame.
        """
        frame, report = self._fetcher.fetch(name, query, start, end, step)
        self._remember(name, report)
        return frame, report

    def last_report(self, name: str) -> FetchReport | None:
        """Return the report of the latest fetch for workload ``name``, if any."""
        with self._lock:
            return self._reports.get(name)

    def bounds(self, series: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """Return None: Thanos is a live source, so callers read history up to now."""
        return None

    def _remember(self, name: str, report: FetchReport) -> None:
        with self._lock:
            self._reports[name] = report

    def _single_series(self, name: str, frame: pd.DataFrame, report: FetchReport) -> pd.Series:
        window = f"between {report.start} and {report.end}"
        if report.partial:
            shown = "; ".join(report.warnings[:MAX_WARNINGS_IN_MESSAGE])
            raise ThanosPartialDataError(
                f"workload {name}: Thanos responded with {len(report.warnings)} warning(s), so "
                f"samples may be missing {window}: {shown}",
                report,
            )
        if len(frame.columns) > 1:
            shown = ", ".join(map(str, frame.columns[:MAX_WARNINGS_IN_MESSAGE]))
            raise UnexpectedSeriesError(
                f"workload {name}: the demand query returned {len(frame.columns)} series "
                f"({shown}, ...), expected one; aggregate it, for example with sum(...), or "
                "narrow its selector",
                report,
            )
        if len(frame.columns) == 0 or not frame.iloc[:, 0].notna().any():
            raise ThanosMissingDataError(
                f"workload {name}: the demand query returned no samples {window}; missing "
                "data is not zero demand, so check the query, the metric names and the "
                "range",
                report,
            )
        return frame.iloc[:, 0]


def _cleaning_report(report: FetchReport) -> CleaningReport:
    notes = list(report.notes)
    if report.stale_from is not None:
        notes.append(f"samples repeat an old value from {report.stale_from.isoformat()} on")
    return CleaningReport(
        duplicates_dropped=report.replica_values_dropped + report.duplicate_points,
        non_finite_dropped=report.non_finite_points,
        stale_dropped=report.stale_points,
        notes=tuple(notes),
    )

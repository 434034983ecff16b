"""Read each workload's demand history from its configured source onto the UTC grid."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pandas as pd

from forecaster.errors import ConfigError
from forecaster.history import History
from forecaster.settings import CsvSourceSettings
from forecaster.sources import HistorySource, build_source
from forecaster.sources.csv import CsvSource
from scaler.settings import Settings, WorkloadSettings

logger = logging.getLogger(__name__)

THANOS_DEFAULT_STEP = pd.Timedelta(seconds=60)


class HistoryLoader:
    """Builds each configured source once and reads workload histories from it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sources: dict[str, HistorySource] = {}

    def source(self, name: str) -> HistorySource:
        if name not in self._sources:
            self._sources[name] = build_source(name, self._settings.sources[name])
        return self._sources[name]

    def step_for(self, workload: WorkloadSettings) -> pd.Timedelta | None:
        """Return the sample step to read at; None lets a CSV trace keep its own step."""
        if workload.demand.step_seconds is not None:
            return pd.Timedelta(seconds=workload.demand.step_seconds)
        if isinstance(self._settings.sources[workload.demand.source], CsvSourceSettings):
            return None
        return THANOS_DEFAULT_STEP

    def trace_step(self, workload: WorkloadSettings) -> pd.Timedelta | None:
        """Return the step a CSV trace is read at; None for a live source or an unknown step."""
        source = self.source(workload.demand.source)
        if not isinstance(source, CsvSource):
            return None
        return self.step_for(workload) or source.sample_step()

    def bounds(self, workload: WorkloadSettings) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """Return the span the workload's source holds, or None for a live source."""
        return self.source(workload.demand.source).bounds(workload.demand.series)

    def load_until(self, workload: WorkloadSettings, end: pd.Timestamp) -> History:
        """Read the forecast's history window ending at ``end``, clipped to what a trace holds.

        Clipping keeps a trace's own start from counting as missing data in the coverage.
        Nothing after ``end`` is returned.
        """
        start = end - pd.Timedelta(seconds=self._settings.forecast.history_seconds)
        span = self.bounds(workload)
        if span is not None:
            start = max(start, span[0])
        history = self.load(workload, start, end)
        if isinstance(self._settings.sources[workload.demand.source], CsvSourceSettings):
            # A CSV sample labelled t covers [t, t + step): at ``end`` only the samples whose
            # step has ended are known. Thanos labels a windowed sample by its window's end.
            history = history.until(end - history.step)
        return history

    def load(self, workload: WorkloadSettings, start: pd.Timestamp, end: pd.Timestamp) -> History:
        """Read ``workload``'s demand in [start, end], scaled to the demand's unit."""
        source = self.source(workload.demand.source)
        history = source.fetch(
            workload.name,
            workload.demand.series,
            start,
            end,
            self.step_for(workload),
        )
        if workload.demand.scale != 1.0:
            history = History(
                history.name, history.values * workload.demand.scale, history.step, history.report
            )
        logger.info(
            "workload %s: read %d points from %s to %s at step %s, coverage %.1f%%",
            workload.name,
            len(history.values),
            history.start if len(history.values) else "-",
            history.end if len(history.values) else "-",
            history.step,
            100 * history.coverage,
        )
        return history


def select_workloads(settings: Settings, names: Iterable[str] | None) -> list[WorkloadSettings]:
    """Return the workloads called ``names`` (all when empty), or raise ConfigError."""
    requested = list(names or [])
    if not requested:
        return list(settings.workloads)
    known = {workload.name: workload for workload in settings.workloads}
    selected = []
    for name in requested:
        if name not in known:
            raise ConfigError("--workload", name, f"one of: {', '.join(sorted(known))}")
        selected.append(known[name])
    return selected


def trace_span(
    loader: HistoryLoader, workloads: Iterable[WorkloadSettings], *, through_last_step: bool = False
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """Return the span every workload's trace covers, or None when a source is live.

    The span ends at the newest row. With ``through_last_step`` it ends where that row's step
    ends instead, the first time at which the newest sample is complete and can be used.
    """
    starts, ends = [], []
    for workload in workloads:
        span = loader.bounds(workload)
        if span is None:
            return None
        starts.append(span[0])
        end = span[1]
        if through_last_step:
            end += loader.trace_step(workload) or pd.Timedelta(0)
        ends.append(end)
    return max(starts), min(ends)

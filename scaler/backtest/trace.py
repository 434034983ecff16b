"""A trace on the simulator's minute clock, and what a policy may observe of it at one minute.

Each workload's ``History`` is expanded to one demand value per minute. A sample at ``t`` with
step ``s >= 1 min`` covers ``[t, t + s)`` and is held constant over its minutes. Samples finer
than a minute are averaged within each minute.

Visibility (no leakage): at minute ``T`` a policy sees the per-minute demand of minutes
``<= T`` (the current minute is load that is already there), and a history sample once its step
has ended within the clock, i.e. when ``t + s <= T + 1 min``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.errors import InsufficientHistoryError, MissingDataError
from forecaster.history import History
from scaler.core.capacity import FloatArray
from scaler.core.decision import DataStatus
from scaler.core.policy import assess_data, coverage_window
from scaler.settings import Settings

MINUTE = pd.Timedelta(minutes=1)


def visible_cutoff(now: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    """Return the newest sample time whose step has ended by the end of minute ``now``."""
    return now + MINUTE - step


def to_minutes(history: History, start: pd.Timestamp, minutes: int) -> FloatArray:
    """Expand ``history`` onto ``minutes`` minutes from ``start`` (NaN where it has no value)."""
    grid_ns = start.as_unit("ns").value + np.arange(minutes, dtype=np.int64) * MINUTE.value
    values = history.values.to_numpy(dtype=np.float64, na_value=np.nan)
    if len(values) == 0:
        return np.full(minutes, np.nan)
    first_ns = history.start.as_unit("ns").value
    step_ns = history.step.value
    if step_ns >= MINUTE.value:
        index = (grid_ns - first_ns) // step_ns
        inside = (index >= 0) & (index < len(values))
        result = np.full(minutes, np.nan)
        result[inside] = values[index[inside]]
        return result
    # Finer than a minute: the mean of the samples inside each minute.
    times = first_ns + np.arange(len(values), dtype=np.int64) * step_ns
    minute_of = (times - grid_ns[0]) // MINUTE.value
    keep = (minute_of >= 0) & (minute_of < minutes) & ~np.isnan(values)
    sums = np.bincount(minute_of[keep], weights=values[keep], minlength=minutes)
    counts = np.bincount(minute_of[keep], minlength=minutes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


class _SampleIndex:
    """Prefix counts over one history's grid, so coverage and the newest sample are O(1)."""

    def __init__(self, history: History) -> None:
        observed = history.values.notna().to_numpy()
        self.start_ns = history.start.as_unit("ns").value if len(observed) else 0
        self.step = history.step
        self.size = len(observed)
        self.observed_before = np.concatenate([[0], np.cumsum(observed)])
        positions = np.where(observed, np.arange(self.size), -1)
        self.last_observed_at = np.maximum.accumulate(positions) if self.size else positions

    def position(self, at: pd.Timestamp) -> int:
        """Return how many grid points lie at or before ``at``, within [0, size]."""
        offset = at.value - self.start_ns
        return int(min(max(offset // self.step.value + 1, 0), self.size))


@dataclass(frozen=True)
class Trace:
    """Per-minute demand of every workload, the source histories, and the simulated span.

    Minute ``m`` is ``start + m minutes``. Minutes ``[0, sim_start)`` are the warm-up and
    ``[sim_start, sim_end)`` are simulated.
    """

    start: pd.Timestamp
    demand: Mapping[str, FloatArray]
    histories: Mapping[str, History]
    sim_start: int
    sim_end: int

    @property
    def minutes(self) -> int:
        return len(next(iter(self.demand.values())))

    def time_of(self, minute: int) -> pd.Timestamp:
        return self.start + minute * MINUTE

    def sim_index(self) -> pd.DatetimeIndex:
        """Return the timestamps of the simulated minutes."""
        return pd.date_range(
            self.time_of(self.sim_start), periods=self.sim_end - self.sim_start, freq=MINUTE
        )


def build_trace(settings: Settings, histories: Mapping[str, History]) -> Trace:
    """Put every workload's history on one minute clock and find the simulated span.

    The clock starts at the first history sample (floored to the minute) and ends where the
    last history's final step ends. The warm-up is ``backtest.warmup_seconds``, the simulated
    span the rest, or ``backtest.duration_seconds`` when set. Raises InsufficientHistoryError
    when nothing is left to simulate after the warm-up, and MissingDataError when no workload
    has a demand sample in the simulated span.
    """
    missing = [w.name for w in settings.workloads if w.name not in histories]
    if missing:
        raise ValueError(f"no history for workload(s) {', '.join(missing)}")
    used = [histories[w.name] for w in settings.workloads]
    if any(len(history.values) == 0 for history in used):
        raise ValueError("every workload's history must hold at least one grid point")
    start = min(history.start for history in used).floor(MINUTE)
    end = max(history.end + history.step for history in used).ceil(MINUTE)
    minutes = int((end - start) / MINUTE)

    sim_start = int(np.ceil(settings.backtest.warmup_seconds / 60))
    sim_end = minutes
    if settings.backtest.duration_seconds is not None:
        sim_end = min(minutes, sim_start + int(np.ceil(settings.backtest.duration_seconds / 60)))
    if sim_start >= sim_end:
        raise InsufficientHistoryError(
            f"the trace spans {minutes} minutes from {start.isoformat()}, which leaves nothing "
            f"to simulate after the {settings.backtest.warmup_seconds} s warm-up; shorten "
            "backtest.warmup_seconds or give a longer history"
        )
    demand = {w.name: to_minutes(histories[w.name], start, minutes) for w in settings.workloads}
    if all(np.isnan(values[sim_start:sim_end]).all() for values in demand.values()):
        # Metrics over minutes without demand would report no shortfall and full SLO attainment.
        first, last = start + sim_start * MINUTE, start + sim_end * MINUTE
        raise MissingDataError(
            f"no workload has a demand sample in the simulated span from {first.isoformat()} "
            f"to {last.isoformat()} (after the {settings.backtest.warmup_seconds} s warm-up); "
            f"{_observed_span(used)}. Choose --start and --end around the data"
        )
    chosen = {w.name: histories[w.name] for w in settings.workloads}
    return Trace(start, demand, chosen, sim_start, sim_end)


def _observed_span(histories: list[History]) -> str:
    """Describe the span of the samples in ``histories``, in words."""
    observed = [h.values.dropna().index for h in histories]
    observed = [index for index in observed if len(index)]
    if not observed:
        return "the histories contain no sample at all"
    first = min(index[0] for index in observed)
    last = max(index[-1] for index in observed)
    return f"the histories contain samples from {first.isoformat()} to {last.isoformat()}"


class TraceView:
    """Read access to a trace for policies, which returns nothing after the current minute."""

    def __init__(self, trace: Trace, settings: Settings) -> None:
        self._trace = trace
        self._settings = settings
        self._samples = {name: _SampleIndex(h) for name, h in trace.histories.items()}
        self._window = pd.Timedelta(seconds=settings.forecast.history_seconds)
        self._coverage_window = coverage_window(settings)

    def at(self, minute: int) -> Observation:
        """Return the observation at ``minute``."""
        return Observation(self, minute)

    def demand_until(self, workload: str, minute: int) -> FloatArray:
        return self._trace.demand[workload][: minute + 1]

    def history_until(self, workload: str, now: pd.Timestamp) -> History:
        history = self._trace.histories[workload]
        return history.until(visible_cutoff(now, history.step))

    def data_status(self, workload: str, now: pd.Timestamp) -> DataStatus:
        samples = self._samples[workload]
        end = samples.position(visible_cutoff(now, samples.step))
        begin = samples.position(now - self._window - pd.Timedelta(1, unit="ns"))
        recent = samples.position(now - self._coverage_window - pd.Timedelta(1, unit="ns"))
        coverage = _share_observed(samples, begin, end)
        recent_coverage = _share_observed(samples, recent, end)
        last = int(samples.last_observed_at[end - 1]) if end > 0 else -1
        last_observed = None
        if last >= begin and last >= 0:
            last_observed = pd.Timestamp(samples.start_ns + last * samples.step.value, tz="UTC")
        return assess_data(
            workload,
            coverage=coverage,
            last_observed=last_observed,
            step=samples.step,
            now=now,
            settings=self._settings,
            recent_coverage=recent_coverage,
        )


def _share_observed(samples: _SampleIndex, begin: int, end: int) -> float:
    """Return the share of grid points in positions [begin, end) that hold a sample."""
    if end <= begin:
        return 0.0
    return float(samples.observed_before[end] - samples.observed_before[begin]) / (end - begin)


class Observation:
    """The trace as seen at one minute: per-minute demand so far and the visible histories."""

    def __init__(self, view: TraceView, minute: int) -> None:
        self._view = view
        self.minute = minute
        self.now = view._trace.time_of(minute)

    def demand(self, workload: str) -> FloatArray:
        """Return the per-minute demand of every minute up to and including now."""
        return self._view.demand_until(workload, self.minute)

    def current_demand(self, workload: str) -> float:
        """Return the demand of the current minute (NaN when missing)."""
        return float(self._view.demand_until(workload, self.minute)[-1])

    def history(self, workload: str) -> History:
        """Return the workload's history with every sample whose step has ended by now."""
        return self._view.history_until(workload, self.now)

    def data_status(self, workload: str) -> DataStatus:
        """Judge the workload's visible data at now (see ``scaler.core.policy.assess_data``)."""
        return self._view.data_status(workload, self.now)

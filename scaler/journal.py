"""The decision journal: what each planning cycle read, decided, applied and held.

Every planning cycle of ``peakcast run`` and ``peakcast plan`` becomes one JSON object on one
line, appended to ``journal.path`` (or written to standard output), so an operator can find
why the pool grew at 09:40 with ``grep`` or ``jq``. A record contains:

- ``at``, ``source`` (``service``, ``plan``, or ``fast_loop`` for floors that live signals
  raised between cycles), ``dry_run``, ``applied`` and ``note`` (``abandoned`` when the
  replica lost the right to act before applying);
- ``workloads``: per workload the data coverage, the newest sample and its age, whether the
  data was usable and why not, the lead time of its floor, and the forecast used: model,
  cutoff, planning level, and the maximum of each quantile over the workload's lead window;
- ``pools``: per pool the lead time of its node floor;
- ``floors``: per floor the current and desired value, the rule that set it, the reason, the
  forecast quantile behind it and its window;
- ``results``: per floor what the actuator did (``ApplyResult`` status: changed, unchanged,
  dry_run, held, conflict, failed), the object and field, old and new value and the message;
- ``summary``: the number of results per status.

With ``journal.events`` (and ``dry_run: false``), every object whose floor changed also gets
one Kubernetes Event (reason ``DecisionJournal``) that summarises the cycle's inputs.

The journal contains no settings, URLs, headers or credentials: only the decision, the data
status and the messages peakcast's own errors carry, which never include a secret.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from forecaster.errors import PeakcastError
from forecaster.forecast import Forecast
from scaler.actuators.base import ApplyResult
from scaler.core.decision import CycleDecision, DataStatus, FloorDecision
from scaler.core.requirements import pool_lead_seconds, workload_lead_seconds
from scaler.settings import Settings

logger = logging.getLogger(__name__)

JOURNAL_VERSION = 1
EVENT_REASON = "DecisionJournal"
EVENT_ACTION = "PlanCycle"
STDOUT_PATHS = (None, Path("-"))
FAST_LOOP_SOURCE = "fast_loop"

# Receives each changed floor's result, the note of its Event summary and the cycle's time.
EventSink = Callable[[ApplyResult, str, pd.Timestamp], None]


# --- the record ------------------------------------------------------------------------------


def build_record(
    settings: Settings,
    decision: CycleDecision,
    results: Sequence[ApplyResult],
    *,
    applied: bool,
    source: str,
    dry_run: bool,
    note: str = "",
    forecasts: Mapping[str, Forecast] | None = None,
    with_inputs: bool = True,
) -> dict[str, Any]:
    """Build the journal record of one cycle as a JSON-ready dict.

    Without ``with_inputs`` (a fast cycle, which reads no history), ``workloads`` is empty.
    """
    now = decision.at
    by_workload = {status.workload: status for status in decision.data}
    counts = Counter(result.status for result in results)
    workloads = settings.workloads if with_inputs else []
    return {
        "journal_version": JOURNAL_VERSION,
        "at": _time(now),
        "source": source,
        "dry_run": dry_run,
        "applied": applied,
        "note": note,
        "workloads": [
            _workload_inputs(
                settings,
                workload.name,
                by_workload.get(workload.name),
                (forecasts or {}).get(workload.name),
                now,
            )
            for workload in workloads
        ],
        "pools": [
            {"pool": pool.name, "lead_time_seconds": pool_lead_seconds(settings, pool.name)}
            for pool in settings.pools
        ],
        "floors": [_floor(floor) for floor in decision.all_floors()],
        "results": [_result(result) for result in results],
        "summary": dict(sorted(counts.items())),
    }


def _workload_inputs(
    settings: Settings,
    name: str,
    status: DataStatus | None,
    forecast: Forecast | None,
    now: pd.Timestamp,
) -> dict[str, Any]:
    lead = workload_lead_seconds(settings, name)
    inputs: dict[str, Any] = {"workload": name, "lead_time_seconds": lead}
    if status is None:
        inputs.update(coverage=None, last_observed=None, data_age_seconds=None, usable=False)
        inputs["reason"] = "no data status was reported for this workload"
    else:
        age = None
        if status.last_observed is not None:
            age = (now - status.last_observed).total_seconds()
        inputs.update(
            coverage=_number(status.coverage),
            last_observed=_time(status.last_observed),
            data_age_seconds=_number(age),
            usable=status.usable,
            reason=status.reason,
        )
    inputs["forecast"] = (
        _forecast_summary(forecast, now, lead, settings.forecast.planning_level)
        if forecast is not None
        else None
    )
    return inputs


def _forecast_summary(
    forecast: Forecast, now: pd.Timestamp, lead_seconds: int, planning_level: float
) -> dict[str, Any]:
    """Summarise ``forecast`` over ``[now, now + lead]``: the maximum of each quantile."""
    starts = forecast.index
    end = now + pd.Timedelta(seconds=lead_seconds)
    # A row covers [start, start + step); it counts when that step meets the window.
    rows = np.flatnonzero((starts <= end) & (starts + forecast.step > now))

    def window_max(values: np.ndarray) -> float | None:
        return _number(float(np.max(values[rows]))) if len(rows) else None

    return {
        "model": forecast.model,
        "cutoff": _time(forecast.cutoff),
        "step_seconds": int(forecast.step.total_seconds()),
        "planning_level": planning_level,
        "window_start": _time(now),
        "window_end": _time(end),
        "point_max": window_max(forecast.point),
        "quantiles_max": {
            f"{level:g}": window_max(values) for level, values in sorted(forecast.quantiles.items())
        },
    }


def _floor(floor: FloorDecision) -> dict[str, Any]:
    return {
        "kind": floor.kind,
        "name": floor.name,
        "current": floor.current,
        "desired": floor.desired,
        "unit": floor.unit,
        "rule": floor.rule,
        "reason": floor.reason,
        "forecast_level": floor.forecast_level,
        "forecast_value": _number(floor.forecast_value),
        "window_start": _time(floor.window_start),
        "window_end": _time(floor.window_end),
    }


def _result(result: ApplyResult) -> dict[str, Any]:
    return {
        "kind": result.floor.kind,
        "name": result.floor.name,
        "target": result.target,
        "field_path": result.field_path,
        "old": result.old,
        "new": result.new,
        "status": result.status,
        "message": result.message,
    }


def _time(stamp: pd.Timestamp | None) -> str | None:
    return None if stamp is None else stamp.tz_convert("UTC").isoformat()


def _number(value: float | None) -> float | None:
    """Return ``value`` as a float, or None when it is missing or not finite (invalid JSON)."""
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def event_note(record: Mapping[str, Any], result: ApplyResult) -> str:
    """Summarise ``record`` for the Event on the object that ``result`` changed."""
    floor = result.floor
    cycle = "Fast cycle" if record["source"] == FAST_LOOP_SOURCE else "Cycle"
    parts = [
        f"{cycle} at {record['at']} set {floor.kind} {floor.name} from {result.old} to "
        f"{result.new} {floor.unit} by rule {floor.rule}."
    ]
    if record["source"] == FAST_LOOP_SOURCE:
        parts.append(f"Reason: {floor.reason}.")
    for inputs in record["workloads"]:
        coverage = inputs["coverage"]
        age = inputs["data_age_seconds"]
        text = (
            f"Workload {inputs['workload']}: coverage "
            f"{'unknown' if coverage is None else f'{coverage:.1%}'}, newest sample "
            f"{'none' if age is None else f'{age:.0f} s old'}, lead time "
            f"{inputs['lead_time_seconds']} s"
        )
        forecast = inputs["forecast"]
        if forecast is not None:
            level = forecast["planning_level"]
            peak = forecast["quantiles_max"].get(f"{level:g}")
            if peak is not None:
                text += f", P{100 * level:g} forecast up to {peak:.4g}"
        if not inputs["usable"]:
            text += f", data not usable: {inputs['reason']}"
        parts.append(text + ".")
    summary = ", ".join(f"{count} {status}" for status, count in record["summary"].items())
    parts.append(f"Results: {summary or 'none'}.")
    return " ".join(parts)


# --- the writer ------------------------------------------------------------------------------


class DecisionJournal:
    """Appends one JSON line per cycle and sends the Event summaries.

    A write error (a full disk, a removed folder) is logged once per run of failures and the
    cycle goes on, because the journal explains decisions and must not block them. An Event
    that cannot be created is logged by ``EventRecorder`` and dropped.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        stream: IO[str] | None = None,
        events: EventSink | None = None,
    ) -> None:
        self._settings = settings
        path = settings.journal.path
        self._path = None if stream is not None or path in STDOUT_PATHS else path
        self._stream = stream
        self._events = events
        self._lock = threading.Lock()
        self._failing = False

    @classmethod
    def from_settings(cls, settings: Settings) -> DecisionJournal | None:
        """Return the configured journal, or None when ``journal.enabled`` is false."""
        journal = settings.journal
        if not journal.enabled:
            return None
        events = None
        if journal.events and not settings.dry_run and not settings.clusters:
            events = KubeEventSink(settings)
        # NOTE: with 'clusters' configured the Event summaries are not sent; the JSON lines
        # still are.
        return cls(settings, events=events)

    def record(
        self,
        decision: CycleDecision,
        results: Sequence[ApplyResult],
        *,
        applied: bool,
        source: str,
        note: str = "",
        forecasts: Mapping[str, Forecast] | None = None,
        with_inputs: bool = True,
    ) -> dict[str, Any]:
        """Write the record of one cycle, send its Event summaries, and return the record."""
        record = build_record(
            self._settings,
            decision,
            results,
            applied=applied,
            source=source,
            dry_run=self._settings.dry_run,
            note=note,
            forecasts=forecasts,
            with_inputs=with_inputs,
        )
        self._write(json.dumps(record, separators=(",", ":"), allow_nan=False))
        if self._events is not None and applied:
            for result in results:
                if result.status == "changed":
                    self._events(result, event_note(record, result), decision.at)
        return record

    def _write(self, line: str) -> None:
        with self._lock:
            try:
                if self._path is None:
                    stream = self._stream or sys.stdout
                    stream.write(line + "\n")
                    stream.flush()
                else:
                    with self._path.open("a", encoding="utf-8") as out:
                        out.write(line + "\n")
            except OSError as error:
                if not self._failing:
                    logger.warning(
                        "Decision journal record was not written to %s: %s; the cycle goes on "
                        "and later failures are logged at DEBUG",
                        self._path or "standard output",
                        error,
                    )
                else:
                    logger.debug("Decision journal record was not written: %s", error)
                self._failing = True
                return
            if self._failing:
                logger.info("Decision journal records are written again")
            self._failing = False


class KubeEventSink:
    """Creates the journal's Events through a client built from ``settings.kubernetes``.

    The client is built at the first Event. When it cannot be built (no kubeconfig outside a
    cluster), Event summaries are turned off with one warning and the JSON lines go on.
    """

    def __init__(self, settings: Settings, recorder: Any | None = None) -> None:
        self._settings = settings
        self._recorder = recorder
        self._disabled = False
        # The Event time is the cycle's time, so no wall clock is read here.
        self._at = pd.Timestamp(0, tz="UTC")
        self._api_versions = _api_versions(settings)

    def __call__(self, result: ApplyResult, note: str, at: pd.Timestamp) -> None:
        if self._disabled:
            return
        self._at = at
        recorder = self._recorder or self._build_recorder()
        if recorder is None:
            return
        kind, _, where = result.target.partition(" ")
        namespace, _, name = where.rpartition("/")
        api_version = self._api_versions.get(kind)
        if not name or api_version is None:
            logger.debug("No Event summary for %s: unknown object kind", result.target)
            return
        metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
        obj = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
        recorder.record(obj, "Normal", EVENT_REASON, EVENT_ACTION, note)

    def _build_recorder(self) -> Any | None:
        # Imported here so that a dry-run 'peakcast plan' never loads the Kubernetes client.
        from scaler.kube.events import EventRecorder, default_reporting_instance
        from scaler.kube.registry import build_kube_client

        kube = self._settings.kubernetes
        try:
            client = build_kube_client(kube)
        except PeakcastError as error:
            logger.warning("Decision journal Events are off: no Kubernetes client: %s", error)
            self._disabled = True
            return None
        self._recorder = EventRecorder(
            client,
            kube.event_reporting_controller,
            kube.event_reporting_instance or default_reporting_instance(),
            lambda: self._at,
        )
        return self._recorder


def _api_versions(settings: Settings) -> dict[str, str]:
    """Map each kind whose floor peakcast writes to its apiVersion."""
    # scaler.kube.resources only declares names; it does not load the Kubernetes client.
    from scaler.kube.resources import (
        DEPLOYMENT,
        GPU_NODE_POOL,
        HPA,
        INFERENCE_SERVICE,
        SCALED_OBJECT,
    )

    kinds = (GPU_NODE_POOL, DEPLOYMENT, HPA, SCALED_OBJECT, INFERENCE_SERVICE)
    versions = {rtype.kind: rtype.api_version for rtype in kinds}
    for pool in settings.pools:
        actuator = pool.actuator
        if actuator is not None and actuator.mode == "custom_field":
            versions[actuator.kind] = actuator.api_version
    return versions

"""The live cycle without servers: a CSV trace, an unreachable Thanos, the dry-run actuator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster.errors import TransientError
from forecaster.forecast import Forecast, align_forecasts
from scaler.actuators.base import ApplyResult
from scaler.actuators.dry_run import DryRunActuator
from scaler.config_loader import parse_settings
from scaler.core.decision import (
    RULE_FORECAST,
    RULE_MAX_STEP,
    RULE_MISSING_DATA_HOLD,
    RULE_STABILIZATION,
    CycleDecision,
)
from scaler.core.policy import Floors
from scaler.cycle import CycleObserver, CycleOutcome, LiveCycle
from scaler.histories import HistoryLoader
from scaler.service.forecasts import WorkloadView
from scaler.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NOW = pd.Timestamp("1970-01-12T12:00:00Z")
WINDOW_SECONDS = 1800
STEP = pd.Timedelta(minutes=30)


class RecordingObserver(CycleObserver):
    def __init__(self) -> None:
        self.fits: list[str] = []
        self.errors: list[str] = []
        self.views: list[WorkloadView] = []
        self.outcomes: list[CycleOutcome] = []

    def refreshed(self, view: WorkloadView, now: pd.Timestamp) -> None:
        self.views.append(view)

    def fitted(self, workload: str, model: str, seconds: float) -> None:
        self.fits.append(workload)

    def planned(self, outcome: CycleOutcome, current: Floors) -> None:
        self.outcomes.append(outcome)

    def error(self, kind: str) -> None:
        self.errors.append(kind)


def workload(name: str, source: str, pool: str) -> dict[str, Any]:
    return {
        "name": name,
        "demand": {"source": source, "series": "req_per_s", "unit": "requests_per_second"},
        "capacity": {"throughput_per_replica": 25.0, "max_replicas": 64},
        "pools": [pool],
    }


def two_workload_settings() -> Settings:
    """Workload ``trace`` reads the bundled CSV, and ``remote`` a Thanos URL with no server."""
    raw = {
        "version": 1,
        "sources": {
            "csv": {"kind": "csv", "path": "data/servegen_m-large_10min.csv"},
            "down": {"kind": "thanos", "url": "http://127.0.0.1:9", "max_retries": 0},
        },
        "forecast": {
            "step_seconds": 1800,
            "season_lengths_seconds": [86400],
            "horizon_seconds": 6 * 3600,
            "history_seconds": 7 * 86400,
            "calibration_windows": 4,
        },
        "pools": [
            {"name": "burst-a", "kind": "burst", "gpus_per_node": 8, "max_nodes": 12},
            {"name": "burst-b", "kind": "burst", "gpus_per_node": 8, "max_nodes": 12},
        ],
        "workloads": [workload("trace", "csv", "burst-a"), workload("remote", "down", "burst-b")],
        "policy": {"stabilization_window_seconds": WINDOW_SECONDS},
    }
    return parse_settings(raw, ROOT)


CURRENT = {
    ("pool", "burst-a"): 1,
    ("pool", "burst-b"): 3,
    ("workload", "trace"): 4,
    ("workload", "remote"): 6,
}


def make_cycle(
    settings: Settings, current: dict[tuple[str, str], int | None] | None = None
) -> tuple[LiveCycle, RecordingObserver]:
    observer = RecordingObserver()
    actuator = DryRunActuator(settings, current or CURRENT)
    return LiveCycle(settings, HistoryLoader(settings), actuator, observer=observer), observer


def refresh_all(cycle: LiveCycle, settings: Settings, now: pd.Timestamp) -> None:
    for item in settings.workloads:
        cycle.refresh(item, now)


def floors(decision: CycleDecision) -> dict[str, tuple[int, str]]:
    return {floor.name: (floor.desired, floor.rule) for floor in decision.all_floors()}


def test_unreachable_source_holds_only_its_workload() -> None:
    settings = two_workload_settings()
    cycle, observer = make_cycle(settings)

    trace = cycle.refresh(settings.workload("trace"), NOW)
    remote = cycle.refresh(settings.workload("remote"), NOW)
    outcome = cycle.plan(NOW, lambda: True)

    assert trace.status.usable
    assert not remote.status.usable
    assert remote.error_kind == "source_unavailable"
    assert "source_unavailable" in observer.errors
    assert outcome is not None
    result = floors(outcome.decision)
    assert result["remote"] == (6, RULE_MISSING_DATA_HOLD)
    assert result["burst-b"] == (3, RULE_MISSING_DATA_HOLD)
    assert result["trace"][1] == RULE_FORECAST
    assert result["trace"][0] > 4
    assert result["burst-a"][1] == RULE_FORECAST


def test_first_cycle_keeps_floor_above_forecast() -> None:
    settings = two_workload_settings()
    high = {**CURRENT, ("workload", "trace"): 40}
    cycle, _ = make_cycle(settings, high)

    refresh_all(cycle, settings, NOW)
    first = cycle.plan(NOW, lambda: True)
    later = NOW + pd.Timedelta(seconds=WINDOW_SECONDS + 60)
    refresh_all(cycle, settings, later)
    second = cycle.plan(later, lambda: True)

    assert first is not None
    assert second is not None
    assert floors(first.decision)["trace"] == (40, RULE_STABILIZATION)
    step = settings.policy.max_scale_down_replicas_per_cycle
    assert floors(second.decision)["trace"] == (40 - step, RULE_MAX_STEP)


def test_old_refresh_makes_data_unusable() -> None:
    settings = two_workload_settings()
    cycle, _ = make_cycle(settings)
    refresh_all(cycle, settings, NOW)

    later = NOW + pd.Timedelta(hours=2)
    outcome = cycle.plan(later, lambda: True)

    assert outcome is not None
    assert [w.name for w in cycle.stale_workloads(later)] == ["trace", "remote"]
    trace = next(status for status in outcome.decision.data if status.workload == "trace")
    assert not trace.usable
    assert "history was last read at" in trace.reason
    assert floors(outcome.decision)["trace"] == (4, RULE_MISSING_DATA_HOLD)


def test_refit_after_interval_else_update() -> None:
    settings = two_workload_settings()
    cycle, observer = make_cycle(settings)
    trace = settings.workload("trace")
    refit = pd.Timedelta(seconds=settings.forecast.refit_interval_seconds)

    cycle.refresh(trace, NOW)
    cycle.refresh(trace, NOW + pd.Timedelta(hours=1))
    assert observer.fits == ["trace"]
    cycle.refresh(trace, NOW + refit)
    assert observer.fits == ["trace", "trace"]
    cycle.refresh(trace, NOW + refit + pd.Timedelta(hours=1), refit=True)
    assert observer.fits == ["trace", "trace", "trace"]


def test_forecast_advances_with_updates() -> None:
    settings = two_workload_settings()
    cycle, _ = make_cycle(settings)
    trace = settings.workload("trace")

    first = cycle.refresh(trace, NOW).forecast
    second = cycle.refresh(trace, NOW + pd.Timedelta(hours=1)).forecast

    assert first is not None
    assert second is not None
    assert second.cutoff - first.cutoff == pd.Timedelta(hours=1)


def test_abandoned_cycle_applies_nothing() -> None:
    settings = two_workload_settings()
    applied: list[CycleDecision] = []

    class Recording(DryRunActuator):
        def apply(self, decision: CycleDecision) -> list[ApplyResult]:
            applied.append(decision)
            return super().apply(decision)

    cycle = LiveCycle(settings, HistoryLoader(settings), Recording(settings, CURRENT))
    refresh_all(cycle, settings, NOW)
    answers = iter([True, False])

    outcome = cycle.plan(NOW, lambda: next(answers))

    assert outcome is not None
    assert not outcome.applied
    assert applied == []


def test_unreadable_floors_skip_cycle() -> None:
    settings = two_workload_settings()

    class Unreachable(DryRunActuator):
        def current_floors(self) -> dict[tuple[str, str], int | None]:
            raise TransientError("the API server did not answer")

    observer = RecordingObserver()
    cycle = LiveCycle(settings, HistoryLoader(settings), Unreachable(settings), observer=observer)
    refresh_all(cycle, settings, NOW)

    assert cycle.plan(NOW, lambda: True) is None
    assert "floors_unreadable" in observer.errors


def forecast(name: str, cutoff: pd.Timestamp, values: list[float]) -> Forecast:
    array = np.array(values)
    return Forecast(name, cutoff, STEP, array, {0.9: array + 1}, "test")


def test_align_cuts_to_newest_cutoff() -> None:
    older = forecast("a", NOW, [1.0, 2.0, 3.0, 4.0])
    newer = forecast("b", NOW + STEP, [10.0, 20.0, 30.0, 40.0])

    aligned, problem = align_forecasts({"a": older, "b": newer})

    assert problem is None
    assert aligned["a"].cutoff == NOW + STEP
    assert aligned["a"].point.tolist() == [2.0, 3.0, 4.0]
    assert aligned["a"].quantiles[0.9].tolist() == [3.0, 4.0, 5.0]
    assert aligned["b"].point.tolist() == [10.0, 20.0, 30.0]


def test_align_reports_forecast_that_ended() -> None:
    older = forecast("a", NOW, [1.0, 2.0])
    newer = forecast("b", NOW + 2 * STEP, [10.0, 20.0])

    aligned, problem = align_forecasts({"a": older, "b": newer})

    assert aligned == {}
    assert problem is not None
    assert "workload a" in problem


def shared_static_settings() -> Settings:
    """``remote`` (listed first, so placed first) and ``trace`` share one static node."""
    raw = two_workload_settings().model_dump(mode="json")
    raw["pools"].insert(0, {"name": "onprem", "kind": "static", "gpus_per_node": 8, "max_nodes": 1})
    trace, remote = raw["workloads"]
    trace["pools"] = ["onprem", "burst-a"]
    remote["pools"] = ["onprem", "burst-b"]
    raw["workloads"] = [remote, trace]
    return parse_settings(raw, ROOT)


def burst_a_floor(remote_replicas: int) -> int:
    settings = shared_static_settings()
    cycle, _ = make_cycle(settings, {**CURRENT, ("workload", "remote"): remote_replicas})
    refresh_all(cycle, settings, NOW)
    outcome = cycle.plan(NOW, lambda: True)
    assert outcome is not None
    assert floors(outcome.decision)["remote"] == (remote_replicas, RULE_MISSING_DATA_HOLD)
    desired, rule = floors(outcome.decision)["burst-a"]
    assert rule == RULE_FORECAST
    return desired


def test_workload_without_forecast_keeps_its_capacity() -> None:
    # Held at 6 replicas, ``remote`` keeps 6 of the static node's 8 GPUs, so ``trace`` needs
    # more burst nodes than when ``remote`` holds a single replica.
    assert burst_a_floor(6) > burst_a_floor(1)

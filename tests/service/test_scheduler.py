"""The job schedule and the per-workload runner, without servers."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from forecaster.errors import ConfigError
from scaler.config_loader import parse_settings
from scaler.service.scheduler import Schedule, WorkloadRunner, build_scheduler
from scaler.settings import Settings, WorkloadSettings
from tests.service.test_cycle import two_workload_settings

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 0.3


def workloads(*names: str) -> list[WorkloadSettings]:
    template = two_workload_settings().workloads[0]
    return [template.model_copy(update={"name": name}) for name in names]


def test_slow_workload_does_not_delay_others() -> None:
    release = threading.Event()

    def call(workload: WorkloadSettings) -> str:
        if workload.name == "slow":
            release.wait(10)
        return workload.name

    runner = WorkloadRunner(1, TIMEOUT_SECONDS, threading.Event())
    started = time.monotonic()
    try:
        report = runner.run(workloads("slow", "a", "b"), call)
        elapsed = time.monotonic() - started
    finally:
        release.set()

    assert report.timed_out == ["slow"]
    assert report.results == {"a": "a", "b": "b"}
    assert report.failed == []
    # Only the slow workload's timeout delays the others.
    assert elapsed < TIMEOUT_SECONDS + 1.0


# The runner lets a call's unexpected error reach threading.excepthook, where the service logs
# it with its traceback; pytest reports that hook call as this warning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_raising_workload_is_reported_failed() -> None:
    def call(workload: WorkloadSettings) -> str:
        if workload.name == "broken":
            raise RuntimeError("model exploded")
        return workload.name

    report = WorkloadRunner(2, TIMEOUT_SECONDS, threading.Event()).run(
        workloads("broken", "fine"), call
    )
    # The thread reaches threading.excepthook after the runner has its report; wait for it, so
    # the hook call belongs to this test.
    for thread in threading.enumerate():
        if thread.name == "peakcast-workload-broken":
            thread.join(5)

    assert report.failed == ["broken"]
    assert report.results == {"fine": "fine"}
    assert report.timed_out == []


def test_stop_ends_wait_at_once() -> None:
    release = threading.Event()
    stop = threading.Event()
    stop.set()
    runner = WorkloadRunner(1, 10.0, stop)
    started = time.monotonic()
    try:
        report = runner.run(workloads("slow"), lambda workload: release.wait(10))
    finally:
        release.set()

    assert time.monotonic() - started < 1.0
    assert report.results == {}
    assert report.timed_out == []


def settings_with(**sections: Any) -> Settings:
    raw = two_workload_settings().model_dump(mode="json")
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return parse_settings(raw, ROOT)


def test_schedule_falls_back_to_policy_and_forecast() -> None:
    settings = settings_with(
        policy={"cycle_interval_seconds": 90},
        forecast={"refit_interval_seconds": 43200},
        service={"refresh_interval_seconds": 120, "plan_interval_seconds": None},
    )

    schedule = Schedule.from_settings(settings)

    assert schedule.refresh_seconds == 120
    assert schedule.plan_seconds == 90
    assert schedule.refit_seconds == 43200


def test_jobs_never_overlap_and_coalesce() -> None:
    settings = settings_with(
        service={
            "refresh_interval_seconds": 300,
            "plan_interval_seconds": 60,
            "refit_interval_seconds": 86400,
            "jitter_seconds": 7,
            "misfire_grace_seconds": 45,
        }
    )

    class Jobs:
        on_warm = None

        def refresh(self) -> None: ...

        def plan(self) -> None: ...

        def refit(self) -> None: ...

    class Observer:
        def error(self, kind: str) -> None: ...

    scheduler = build_scheduler(Jobs(), Schedule.from_settings(settings), Observer())  # type: ignore[arg-type]
    # Job defaults apply when the scheduler starts; paused, it runs nothing.
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)

    assert sorted(jobs) == ["plan", "refit", "refresh"]
    intervals = {}
    for job_id, job in jobs.items():
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time == 45
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.jitter == 7
        intervals[job_id] = job.trigger.interval.total_seconds()
    assert intervals == {"refresh": 300, "plan": 60, "refit": 86400}


@pytest.mark.parametrize(
    ("service", "message"),
    [
        pytest.param(
            {"lease_duration_seconds": 10, "renew_deadline_seconds": 10},
            "lease_duration_seconds (10.0) must exceed renew_deadline_seconds (10.0)",
            id="renew deadline not below duration",
        ),
        pytest.param(
            {"renew_deadline_seconds": 2, "retry_period_seconds": 2},
            "renew_deadline_seconds (2.0) must exceed retry_period_seconds (2.0)",
            id="retry period not below deadline",
        ),
        pytest.param({"lease_name": "Peakcast"}, "DNS-1123 label", id="lease name"),
        pytest.param({"metric_horizons_seconds": [-60]}, "0 or more seconds", id="horizon"),
    ],
)
def test_invalid_service_settings_rejected(service: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="service") as raised:
        settings_with(service=service)
    assert message in str(raised.value)

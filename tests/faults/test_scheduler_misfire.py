"""Scheduler misfires after a long pause (a stopped VM, a frozen container, a busy process).

The jobs run on a real APScheduler ``BackgroundScheduler``. A pause is made by starting it
paused and moving a job's next start into the past, as if the process had slept through
those starts. With ``coalesce`` the missed starts become one run, or none when even the
newest of them is older than ``service.misfire_grace_seconds``. The catch-up planning cycle
then re-reads the history it missed instead of planning from an old forecast.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from scaler.service.leader import SoleReplica
from scaler.service.metrics import ServiceMetrics
from scaler.service.scheduler import JOB_PLAN, Schedule, ServiceJobs, build_scheduler
from tests.faults import rig as r
from tests.service import harness as h

pytestmark = pytest.mark.timeout(30)

INTERVAL_SECONDS = 60
MISSED_STARTS = 10
WATCH_SECONDS = 1.5


class CountingJobs:
    """Stands in for ``ServiceJobs``: counts the runs of each job."""

    on_warm = None

    def __init__(self) -> None:
        self.runs = {"refresh": 0, "plan": 0, "refit": 0}
        self._lock = threading.Lock()

    def _count(self, job: str) -> None:
        with self._lock:
            self.runs[job] += 1

    def refresh(self) -> None:
        self._count("refresh")

    def plan(self) -> None:
        self._count("plan")

    def refit(self) -> None:
        self._count("refit")


class ErrorLog:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def error(self, kind: str) -> None:
        self.kinds.append(kind)


def schedule(grace_seconds: int) -> Schedule:
    return Schedule(
        refresh_seconds=3600,
        plan_seconds=INTERVAL_SECONDS,
        refit_seconds=86_400,
        jitter_seconds=0,
        misfire_grace_seconds=grace_seconds,
    )


def resume_after_pause(
    grace_seconds: int, paused_seconds: float
) -> tuple[CountingJobs, ErrorLog, dt.datetime]:
    """Run the plan job as if the process had been paused for ``paused_seconds``."""
    jobs, errors = CountingJobs(), ErrorLog()
    scheduler = build_scheduler(jobs, schedule(grace_seconds), errors)  # type: ignore[arg-type]
    scheduler.start(paused=True)
    try:
        # The first runs of refresh and plan are due at once; leave only the plan job's misses.
        scheduler.remove_job("refresh")
        last_start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=paused_seconds)
        scheduler.modify_job(JOB_PLAN, next_run_time=last_start)
        scheduler.resume()
        time.sleep(WATCH_SECONDS)
        next_start = scheduler.get_job(JOB_PLAN).next_run_time
    finally:
        scheduler.shutdown(wait=True)
    return jobs, errors, next_start


def test_long_pause_gives_one_catch_up_run() -> None:
    # The newest missed start is due right now, well within the grace time.
    jobs, errors, next_start = resume_after_pause(30, MISSED_STARTS * INTERVAL_SECONDS)

    assert jobs.runs["plan"] == 1
    assert errors.kinds == []
    assert next_start > dt.datetime.now(dt.UTC)


def test_pause_past_grace_waits_for_next_start() -> None:
    # The newest missed start is 30 s old, beyond a 5 s grace time: no run now, one report.
    jobs, errors, next_start = resume_after_pause(5, MISSED_STARTS * INTERVAL_SECONDS + 30)

    assert jobs.runs["plan"] == 0
    assert errors.kinds == ["job_missed"]
    wait = (next_start - dt.datetime.now(dt.UTC)).total_seconds()
    assert 0 < wait <= INTERVAL_SECONDS


def test_catch_up_cycle_reads_fresh_history(rig: r.Rig) -> None:
    """The cycle after a 6-hour pause re-reads history at its own time before it plans."""
    rig.run(r.PEAK)
    jobs = ServiceJobs(
        rig.settings,
        rig.cycle,
        SoleReplica(),
        ServiceMetrics(rig.settings),
        rig.clock,
        threading.Event(),
    )
    jobs.warm.set()
    rig.clock.now = r.EVENING

    outcome = jobs.plan()

    assert outcome is not None
    status = outcome.decision.data[0]
    assert status.usable
    assert status.last_observed is not None
    assert r.EVENING - status.last_observed <= h.TRACE_STEP
    assert rig.cycle.view(h.WORKLOAD).refreshed_at == r.EVENING  # type: ignore[union-attr]
    assert h.workload_floor(rig.kube) == next(floor.desired for floor in outcome.decision.workloads)

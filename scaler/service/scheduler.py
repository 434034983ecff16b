"""The job schedule of ``peakcast run`` on an APScheduler 3.x ``BackgroundScheduler``.

Three interval jobs, each with at most one run at a time, missed starts coalesced into one run
and run late within ``service.misfire_grace_seconds``, and a random start delay of up to
``service.jitter_seconds``:

- ``refresh`` reads history and updates the forecast of every workload (every replica);
- ``plan`` decides and applies floors (the leader only; followers skip it);
- ``refit`` refits every workload's model, re-selecting it with model ``auto`` (every replica).

Workloads are refreshed in parallel on daemon threads, and the job stops waiting for one after
``service.workload_timeout_seconds``. That workload's floors hold, and a thread takes its
place so the workloads queued behind it are not delayed further.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import pandas as pd
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from forecaster.errors import PeakcastError
from scaler.cycle import Clock, CycleObserver, CycleOutcome, LiveCycle
from scaler.service.forecasts import WorkloadView
from scaler.service.leader import Leadership
from scaler.service.metrics import LeadTimeStatistic, ServiceMetrics
from scaler.settings import Settings, WorkloadSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

JOB_REFRESH = "refresh"
JOB_PLAN = "plan"
JOB_REFIT = "refit"
JOB_FAST_LOOP = "fast_loop"
WAIT_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Schedule:
    """Job intervals and their tolerances, in seconds."""

    refresh_seconds: int
    plan_seconds: int
    refit_seconds: int
    jitter_seconds: int
    misfire_grace_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        """Read the schedule; unset plan and refit intervals come from policy and forecast."""
        service = settings.service
        return cls(
            refresh_seconds=service.refresh_interval_seconds,
            plan_seconds=service.plan_interval_seconds or settings.policy.cycle_interval_seconds,
            refit_seconds=service.refit_interval_seconds
            or settings.forecast.refit_interval_seconds,
            jitter_seconds=service.jitter_seconds,
            misfire_grace_seconds=service.misfire_grace_seconds,
        )


@dataclass
class RunReport(Generic[T]):
    """Results per workload, and the workloads that timed out or raised."""

    results: dict[str, T] = field(default_factory=dict)
    timed_out: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass
class _Slot(Generic[T]):
    started_at: float | None = None
    finished: bool = False
    result: T | None = None


class WorkloadRunner:
    """Runs one call per workload on daemon threads, at most ``max_parallel`` at once.

    A call still running ``timeout_seconds`` after it started is given up: its result is None,
    and its parallel slot goes to the next workload. The thread itself runs on until the call
    returns (Python cannot stop a thread); daemon threads never delay the process exit.
    """

    def __init__(
        self,
        max_parallel: int,
        timeout_seconds: float,
        stop: threading.Event,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_parallel = max_parallel
        self._timeout = timeout_seconds
        self._stop = stop
        self._monotonic = monotonic

    def run(
        self, workloads: Sequence[WorkloadSettings], call: Callable[[WorkloadSettings], T]
    ) -> RunReport[T]:
        """Call ``call`` once per workload and report the results, timeouts and failures."""
        slots: dict[str, _Slot[T]] = {w.name: _Slot() for w in workloads}
        permits = threading.Semaphore(self._max_parallel)
        changed = threading.Condition()

        def work(workload: WorkloadSettings) -> None:
            slot = slots[workload.name]
            permits.acquire()
            try:
                if self._stop.is_set():
                    return
                with changed:
                    slot.started_at = self._monotonic()
                slot.result = call(workload)
            finally:
                with changed:
                    slot.finished = True
                    changed.notify_all()
                permits.release()

        for workload in workloads:
            name = f"peakcast-workload-{workload.name}"
            threading.Thread(target=work, args=(workload,), name=name, daemon=True).start()
        self._wait(slots, permits, changed)
        report: RunReport[T] = RunReport()
        with changed:
            for name, slot in slots.items():
                if slot.finished and slot.result is not None:
                    report.results[name] = slot.result
                elif slot.finished and slot.started_at is not None:
                    report.failed.append(name)
                elif not self._stop.is_set():
                    report.timed_out.append(name)
        return report

    def _wait(
        self, slots: dict[str, _Slot[T]], permits: threading.Semaphore, changed: threading.Condition
    ) -> None:
        given_up: set[str] = set()
        with changed:
            while not self._stop.is_set():
                now = self._monotonic()
                for name, slot in slots.items():
                    overdue = slot.started_at is not None and now - slot.started_at > self._timeout
                    if not slot.finished and overdue and name not in given_up:
                        given_up.add(name)
                        permits.release()  # the next queued workload takes this slot
                if all(slot.finished or name in given_up for name, slot in slots.items()):
                    return
                changed.wait(WAIT_POLL_SECONDS)


class ServiceJobs:
    """The three jobs. Each reads ``now`` from the injected clock once, at its start."""

    def __init__(
        self,
        settings: Settings,
        cycle: LiveCycle,
        leadership: Leadership,
        metrics: ServiceMetrics,
        clock: Clock,
        stopping: threading.Event,
        *,
        lead_times: Callable[[], dict[tuple[str, str], LeadTimeStatistic]] | None = None,
        on_outcome: Callable[[CycleOutcome], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._cycle = cycle
        self._leadership = leadership
        self._metrics = metrics
        self._clock = clock
        self._stopping = stopping
        self._lead_times = lead_times
        self._on_outcome = on_outcome
        self._monotonic = monotonic
        service = settings.service
        self._runner = WorkloadRunner(
            service.max_parallel_workloads, service.workload_timeout_seconds, stopping, monotonic
        )
        self.warm = threading.Event()
        self.on_warm: Callable[[], None] | None = None
        self.last_plan_started = monotonic()

    def refresh(self) -> None:
        """Refresh every workload (history and forecast), then the measured lead times."""
        self._refresh_all(refit=False)
        self._read_lead_times()

    def refit(self) -> None:
        """Refit every workload's model."""
        self._refresh_all(refit=True)

    def plan(self) -> CycleOutcome | None:
        """Run one planning cycle when this replica leads and the first refresh is done."""
        self.last_plan_started = self._monotonic()
        if not self._leadership.is_leader():
            logger.debug("Not the leader; the planning cycle is left to the leader")
            return None
        if not self.warm.is_set():
            logger.info("Planning waits for the first refresh of every workload")
            return None
        started = self._monotonic()
        now = self._clock()
        stale = self._cycle.stale_workloads(now)
        if stale:
            logger.info(
                "Refreshing %s before the cycle at %s: their last refresh is too old",
                ", ".join(w.name for w in stale),
                now.isoformat(),
            )
            self._refresh(stale, now, refit=False)
        outcome = self._cycle.plan(now, self.may_act)
        self._metrics.job_duration.labels(JOB_PLAN).observe(self._monotonic() - started)
        if outcome is not None and self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome

    def may_act(self) -> bool:
        """Tell whether a cycle may apply now: leading, and no stop requested."""
        return self._leadership.is_leader() and not self._stopping.is_set()

    def _refresh_all(self, refit: bool) -> None:
        started = self._monotonic()
        now = self._clock()
        self._refresh(self._settings.workloads, now, refit)
        job = JOB_REFIT if refit else JOB_REFRESH
        self._metrics.job_duration.labels(job).observe(self._monotonic() - started)
        if not self.warm.is_set() and not self._stopping.is_set():
            self.warm.set()
            logger.info("First refresh done for every workload; forecasts are warm")
            if self.on_warm is not None:
                self.on_warm()

    def _refresh(
        self, workloads: Sequence[WorkloadSettings], now: pd.Timestamp, refit: bool
    ) -> RunReport[WorkloadView]:
        report = self._runner.run(
            workloads, lambda workload: self._cycle.refresh(workload, now, refit=refit)
        )
        timeout = self._settings.service.workload_timeout_seconds
        for name in report.timed_out:
            reason = (
                f"the refresh did not finish within service.workload_timeout_seconds "
                f"= {timeout:g} s"
            )
            self._cycle.mark_failed(name, now, reason, "timeout")
        for name in report.failed:
            reason = "the refresh raised an unexpected error (its traceback is logged above)"
            self._cycle.mark_failed(name, now, reason, "internal")
        return report

    def _read_lead_times(self) -> None:
        if self._lead_times is None:
            return
        try:
            measured = self._lead_times()
        except PeakcastError as error:
            logger.warning("Measured lead times could not be read: %s", error)
            return
        self._metrics.set_lead_times(measured)


def build_scheduler(
    jobs: ServiceJobs,
    schedule: Schedule,
    observer: CycleObserver,
) -> BackgroundScheduler:
    """Create the scheduler with the three jobs; refresh and plan start right away."""
    scheduler = BackgroundScheduler(
        timezone=dt.UTC,
        executors={"default": ThreadPoolExecutor(max_workers=3)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": schedule.misfire_grace_seconds,
        },
    )
    jitter = schedule.jitter_seconds or None
    start = dt.datetime.now(dt.UTC)
    intervals = (
        (JOB_REFRESH, jobs.refresh, schedule.refresh_seconds, start),
        (JOB_PLAN, jobs.plan, schedule.plan_seconds, start),
        (JOB_REFIT, jobs.refit, schedule.refit_seconds, None),
    )
    for job_id, function, seconds, first_run in intervals:
        trigger = IntervalTrigger(seconds=seconds, jitter=jitter, timezone=dt.UTC)
        options = {"next_run_time": first_run} if first_run is not None else {}
        scheduler.add_job(function, trigger, id=job_id, name=job_id, **options)

    def run_plan_now() -> None:
        if scheduler.running:
            scheduler.modify_job(JOB_PLAN, next_run_time=dt.datetime.now(dt.UTC))

    jobs.on_warm = run_plan_now
    scheduler.add_listener(
        _job_listener(observer), EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
    )
    logger.info(
        "Schedule: refresh every %d s, plan every %d s, refit every %d s, jitter up to %d s, "
        "misfire grace %d s",
        schedule.refresh_seconds,
        schedule.plan_seconds,
        schedule.refit_seconds,
        schedule.jitter_seconds,
        schedule.misfire_grace_seconds,
    )
    return scheduler


def add_fast_loop_job(
    scheduler: BackgroundScheduler,
    jobs: ServiceJobs,
    run_fast_cycle: Callable[[], object],
    interval_seconds: int,
) -> None:
    """Add the fast loop's job: live signals read and floors raised every ``interval_seconds``.

    Only the leader runs it, as it writes floors. It has an executor of its own, so a long
    refresh or refit never delays a raise.
    """
    scheduler.add_executor(ThreadPoolExecutor(max_workers=1), alias=JOB_FAST_LOOP)

    def fast_cycle() -> None:
        if jobs.may_act():
            run_fast_cycle()

    trigger = IntervalTrigger(seconds=interval_seconds, timezone=dt.UTC)
    scheduler.add_job(
        fast_cycle, trigger, id=JOB_FAST_LOOP, name=JOB_FAST_LOOP, executor=JOB_FAST_LOOP
    )
    logger.info("Schedule: fast loop every %d s", interval_seconds)


def _job_listener(observer: CycleObserver) -> Callable[[JobExecutionEvent], None]:
    def listen(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_ERROR:
            # APScheduler has logged the traceback; this counts it.
            observer.error("job_failed")
        elif event.code == EVENT_JOB_MISSED:
            logger.warning(
                "Job %s missed its start at %s by more than the misfire grace time; it runs at "
                "its next start",
                event.job_id,
                event.scheduled_run_time,
            )
            observer.error("job_missed")
        else:
            observer.error("job_skipped")

    return listen

"""``ServiceApp``: the wiring of ``peakcast run`` and its orderly stop.

Start: HTTP endpoints, then leader election, then the scheduler (its first refresh runs at once
and the first planning cycle follows it).

Stop (SIGTERM): the service turns not ready and refuses to start applying, so a cycle that has
not reached the actuator yet is abandoned and writes nothing. A cycle already applying runs to
its end: the actuator writes pool floors, then workload floors, in configuration order, and the
cycle logs its completion. Then leader election stops, the Lease is released (holder cleared)
so a follower takes over at its next attempt, and the HTTP endpoints close.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd
from kubernetes import client as k8s

from forecaster.forecast import Forecast
from scaler.actuators.base import Actuator
from scaler.backtest.forecasting import ForecastEngine
from scaler.cycle import Clock, CycleOutcome, LiveCycle
from scaler.histories import HistoryLoader
from scaler.journal import DecisionJournal
from scaler.kube.client import KubeClient
from scaler.service.http import ServiceHTTPServer
from scaler.service.leader import Leadership, LeaseConfig, LeaseElector, SoleReplica
from scaler.service.metrics import LeadTimeStatistic, ServiceMetrics
from scaler.service.scheduler import Schedule, ServiceJobs, add_fast_loop_job, build_scheduler
from scaler.settings import Settings
from scaler.signals.wiring import at_now, service_fast_loop

logger = logging.getLogger(__name__)

THREAD_JOIN_SECONDS = 10.0


def wall_clock() -> pd.Timestamp:
    """Read the wall clock in UTC; the service's jobs take ``now`` from here, once per run."""
    return pd.Timestamp.now(tz="UTC")


@runtime_checkable
class ReportsLeadTimes(Protocol):
    """An actuator that reads measured lead times from the cluster (``KubeActuator``)."""

    def lead_times(self) -> dict[tuple[str, str], LeadTimeStatistic]: ...


@dataclass(frozen=True)
class LeaseSetup:
    """The client and settings leader election uses; None in ``ServiceApp`` disables it."""

    api: k8s.CoordinationV1Api
    config: LeaseConfig


class ServiceApp:
    """The scheduled service: jobs, leader election, metrics and HTTP endpoints."""

    def __init__(
        self,
        settings: Settings,
        actuator: Actuator,
        *,
        lease: LeaseSetup | None,
        clock: Clock = wall_clock,
        host: str = "127.0.0.1",
        port: int = 8080,
        loader: HistoryLoader | None = None,
        engine: ForecastEngine | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        signal_kube: KubeClient | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = ServiceMetrics(settings)
        self.stopping = threading.Event()
        self._stop_requested = threading.Event()
        self._leader_stop = threading.Event()
        self._monotonic = monotonic
        self._started = False
        self.last_outcome: CycleOutcome | None = None

        # Live signals: with any configured, the fast loop raises floors between cycles, and the
        # cycle lifts its plan to the raised floors before its guardrails and applies through
        # the fast loop's actuator, so each plan is max(predictive, reactive). ``signal_kube``
        # reads pods and nodes for the pool signals.
        # One journal for both loops, so their records never interleave within a line.
        journal = DecisionJournal.from_settings(settings)
        self.fast_loop = service_fast_loop(
            settings,
            actuator,
            kube=signal_kube,
            forecasts=self._forecast,
            on_refit=self._refit_soon,
            observer=self.metrics,
            journal=journal,
        )
        self._clock = clock
        self.cycle = LiveCycle(
            settings,
            loader or HistoryLoader(settings),
            self.fast_loop.actuator if self.fast_loop is not None else actuator,
            engine=engine,
            observer=self.metrics,
            journal=journal,
            lift=self.fast_loop.lift if self.fast_loop is not None else None,
        )
        if self.fast_loop is not None:
            # Live-signal raises obey the budgets and cooldowns the cycle accounts.
            self.fast_loop.use_guardrail_state(self.cycle.guardrail_state)
        self.leadership: Leadership = (
            LeaseElector(lease.api, lease.config, on_change=self._leader_changed)
            if lease is not None
            else SoleReplica(on_change=self._leader_changed)
        )
        self.jobs = ServiceJobs(
            settings,
            self.cycle,
            self.leadership,
            self.metrics,
            clock,
            self.stopping,
            lead_times=actuator.lead_times if isinstance(actuator, ReportsLeadTimes) else None,
            on_outcome=self._keep_outcome,
            monotonic=monotonic,
        )
        self.scheduler = build_scheduler(self.jobs, Schedule.from_settings(settings), self.metrics)
        if self.fast_loop is not None:
            interval = settings.fast_loop.interval_seconds
            add_fast_loop_job(self.scheduler, self.jobs, at_now(self.fast_loop, clock), interval)
        self._listen = (host, port)
        self._http: ServiceHTTPServer | None = None
        self._elector_thread = threading.Thread(
            target=self.leadership.run, args=(self._leader_stop,), name="peakcast-leader"
        )
        self._elector_thread.daemon = True

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the HTTP endpoints, leader election and the scheduler."""
        logger.info(
            "peakcast service starting: %d workloads, %d pools, dry_run=%s",
            len(self.settings.workloads),
            len(self.settings.pools),
            self.settings.dry_run,
        )
        host, port = self._listen
        self._http = ServiceHTTPServer(host, port, self.metrics.registry, self.healthy, self.ready)
        self._http.start()
        self._elector_thread.start()
        self.scheduler.start()
        self._started = True

    @property
    def address(self) -> tuple[str, int]:
        """Return the host and port the HTTP endpoints listen on; the port is known once started."""
        if self._http is None:
            raise RuntimeError("the service has not been started")
        return self._http.address

    def request_stop(self) -> None:
        """Ask the service to stop; safe to call from a signal handler."""
        self._stop_requested.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested or ``timeout`` passes; return whether one was."""
        return self._stop_requested.wait(timeout)

    def shutdown(self, *, release_lease: bool = True) -> None:
        """Stop in order: no new applies, running jobs end, the Lease is released, HTTP closes.

        ``release_lease`` False leaves the Lease to expire, as after a crash.
        """
        logger.info("peakcast service stopping: no new cycle applies; waiting for running jobs")
        self.stopping.set()
        self._stop_requested.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self._leader_stop.set()
        if self._elector_thread.is_alive():
            self._elector_thread.join(THREAD_JOIN_SECONDS)
        if release_lease:
            self.leadership.release()
        if self._http is not None:
            self._http.stop()
        logger.info("peakcast service stopped")

    def run_once(self) -> CycleOutcome | None:
        """Refresh every workload, then plan and apply once if this replica may lead.

        The Lease is taken right before planning, because a refresh may outlast its renew
        deadline, and it is released afterwards.
        """
        self.jobs.refresh()
        if not self.leadership.attempt():
            logger.warning("Another replica holds the Lease; this run does not act")
            return None
        try:
            return self.jobs.plan()
        finally:
            self.leadership.release()

    # --- checks --------------------------------------------------------------------------------

    def healthy(self) -> tuple[bool, str]:
        """Pass while the scheduler and leader election run and planning cycles start."""
        if not self._started:
            return False, "starting"
        if not self.scheduler.running:
            return False, "the scheduler is not running"
        if not self._elector_thread.is_alive() and not self.stopping.is_set():
            return False, "leader election stopped"
        idle = self._monotonic() - self.jobs.last_plan_started
        limit = self.settings.service.stall_seconds
        if idle > limit:
            return False, f"no planning cycle has started for {idle:.0f} s (limit {limit} s)"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        """Pass once every workload has been refreshed once, until the service stops."""
        if self.stopping.is_set():
            return False, "stopping"
        if not self.jobs.warm.is_set():
            return False, "waiting for the first refresh of every workload"
        return True, "ok"

    # --- callbacks -----------------------------------------------------------------------------

    def _leader_changed(self, leader: bool) -> None:
        # A new term starts from the floors on the cluster, not from what an old term remembered.
        self.cycle.reset_state()
        self.metrics.set_leader(leader)

    def _keep_outcome(self, outcome: CycleOutcome) -> None:
        self.last_outcome = outcome

    def _forecast(self, workload: str) -> Forecast | None:
        view = self.cycle.view(workload)
        return view.forecast if view is not None else None

    def _refit_soon(self, workload: str) -> None:
        # A forecast miss requests a refit of that workload now, outside the refit schedule.
        if not self.scheduler.running:
            return
        self.scheduler.add_job(
            self.cycle.refresh,
            args=(self.settings.workload(workload), self._clock()),
            kwargs={"refit": True},
            id=f"refit-{workload}",
            name=f"refit-{workload}",
            replace_existing=True,
        )

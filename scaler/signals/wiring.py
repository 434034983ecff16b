"""Wiring of the fast loop next to the forecast policy, in ``peakcast run`` and ``peakcast plan``.

- ``build_fast_loop`` wraps the service's actuator in a ``CombinedActuator`` and returns the
  fast loop that shares it. The planning cycle must apply through ``loop.actuator`` so that
  each cycle's decision is ``max(predictive, reactive)``, and the scheduler runs
  ``loop.run_once`` every ``fast_loop.interval_seconds``.
- ``combine_with_signals`` is the one-shot step of ``peakcast plan``. It reads every signal
  once at ``now``, with the plan's floors as the current floors, and returns the decision with
  each floor raised to what the live signals request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pandas as pd

from forecaster.errors import ConfigError
from scaler.actuators.base import Actuator, ApplyResult
from scaler.core.decision import CycleDecision
from scaler.fastloop import FastLoop, ForecastProvider
from scaler.journal import DecisionJournal
from scaler.kube.client import KubeClient
from scaler.settings import Settings
from scaler.signals.outcome import FastCycleOutcome, FastLoopObserver
from scaler.signals.raised import CombinedActuator, RaisedFloors, combine_decision
from scaler.signals.registry import QueryClients, build_signals
from scaler.signals.settings import has_signals

logger = logging.getLogger(__name__)


def build_fast_loop(
    settings: Settings,
    actuator: Actuator,
    *,
    kube: KubeClient | None,
    forecasts: ForecastProvider,
    on_refit: Callable[[str], None] | None = None,
    observer: FastLoopObserver | None = None,
    sleep: Callable[[float], None] = time.sleep,
    journal: DecisionJournal | None = None,
) -> FastLoop:
    """Build the fast loop of ``settings`` around ``actuator`` (see the module docstring).

    ``journal`` records each fast cycle that raised a floor; share the planning cycle's.
    """
    raised = RaisedFloors(settings.policy.stabilization_window_seconds)
    combined = CombinedActuator(actuator, raised, _exporter(observer))
    signals = build_signals(
        settings, kube=kube, queries=QueryClients(settings, sleep), forecasts=forecasts
    )
    logger.info(
        "Fast loop: %d live signals every %d s (%s)",
        len(signals),
        settings.fast_loop.interval_seconds,
        ", ".join(signal.key.label for signal in signals) or "none",
    )
    return FastLoop(
        settings,
        signals,
        combined,
        forecasts=forecasts,
        on_refit=on_refit,
        observer=observer,
        journal=journal,
    )


def _exporter(
    observer: FastLoopObserver | None,
) -> Callable[[CycleDecision], None] | None:
    """Return the callback that exports each planning cycle's combined workload floors."""
    if observer is None:
        return None
    export = observer.combined_floors

    def export_combined(decision: CycleDecision) -> None:
        export({floor.name: floor.desired for floor in decision.workloads})

    return export_combined


def service_fast_loop(
    settings: Settings,
    actuator: Actuator,
    *,
    kube: KubeClient | None,
    forecasts: ForecastProvider,
    on_refit: Callable[[str], None] | None,
    observer: FastLoopObserver | None,
    journal: DecisionJournal | None = None,
) -> FastLoop | None:
    """Return the fast loop of ``peakcast run``, or None when no live signal is configured."""
    if not has_signals(settings):
        return None
    return build_fast_loop(
        settings,
        actuator,
        kube=kube,
        forecasts=forecasts,
        on_refit=on_refit,
        observer=observer,
        journal=journal,
    )


class _PlannedFloors:
    """An actuator whose current floors are a plan's floors, and which writes nothing."""

    def __init__(self, decision: CycleDecision) -> None:
        self._floors: dict[tuple[str, str], int | None] = {
            (f.kind, f.name): f.desired for f in decision.all_floors()
        }

    def current_floors(self) -> dict[tuple[str, str], int | None]:
        return dict(self._floors)

    def apply(self, decision: CycleDecision) -> list[ApplyResult]:
        return []


def combine_with_signals(
    settings: Settings,
    decision: CycleDecision,
    *,
    kube_client: Callable[[], KubeClient],
    forecasts: ForecastProvider | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[CycleDecision, FastCycleOutcome]:
    """Read every live signal once at ``decision.at`` and combine it with ``decision``.

    Thanos signals read their whole hysteresis window at once, and pending GPU pods count from
    the time each pod became unschedulable. A signal that supplies one sample per read (GPU
    allocation) can raise a floor here only with ``min_samples`` 1 and ``hold_seconds`` 0.
    ``kube_client`` is called only when a pool has signals; a ``ConfigError`` from it makes
    those signals unreadable.
    """
    kube: KubeClient | None = None
    problem = "no Kubernetes client is configured"
    if any(pool.signals is not None and pool.actuator is not None for pool in settings.pools):
        try:
            kube = kube_client()
        except ConfigError as error:
            problem = f"the Kubernetes client could not be built: {error}"
    raised = RaisedFloors(settings.policy.stabilization_window_seconds)
    provider = forecasts or (lambda name: None)
    queries = QueryClients(settings, sleep)
    try:
        signals = build_signals(
            settings, kube=kube, queries=queries, forecasts=provider, kube_problem=problem
        )
        actuator = CombinedActuator(_PlannedFloors(decision), raised)
        outcome = FastLoop(settings, signals, actuator, forecasts=provider).run_once(decision.at)
    finally:
        queries.close()
    return combine_decision(decision, raised), outcome


def at_now(loop: FastLoop, clock: Callable[[], pd.Timestamp]) -> Callable[[], FastCycleOutcome]:
    """Return the job function that runs one fast cycle at ``clock()``."""

    def run_fast_cycle() -> FastCycleOutcome:
        return loop.run_once(clock())

    return run_fast_cycle

"""The node side of one cycle: observe every written pool, apply limits, write the targets."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from forecaster.errors import PeakcastError
from scaler.actuators.base import ApplyResult
from scaler.actuators.dry_run import unwritten_pool_result
from scaler.core.decision import FloorDecision
from scaler.kube.availability import (
    PoolAvailability,
    PoolTarget,
    fallback_pools,
    plan_targets,
)
from scaler.kube.events import EventRecorder
from scaler.kube.gpunodepool import GPUNodePoolMode
from scaler.kube.leadtime import (
    NODE_PROVISIONING_ANNOTATION,
    PENDING_RAISE_ANNOTATION,
    LeadTimeStats,
    PendingRaise,
    node_arrival_timeout_seconds,
    node_phase_changes,
)
from scaler.kube.nodeside import PoolMode, PoolObservation
from scaler.kube.objects import peakcast_annotations
from scaler.kube.writer import FloorWriter, WriteRequest
from scaler.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolCondition:
    """A reported pool state: ``QuotaLimited``, ``CapacityUnavailable`` or ``UnmetCapacity``."""

    pool: str
    type: str
    message: str


@dataclass
class PoolCycle:
    """Node-side observations, targets and conditions of one cycle, read by the workload side."""

    observations: dict[str, PoolObservation] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    targets: dict[str, PoolTarget] = field(default_factory=dict)
    conditions: list[PoolCondition] = field(default_factory=list)
    timed_out: set[str] = field(default_factory=set)  # pools whose requested nodes never came


class PoolSide:
    """Observes pools, marks unavailable ones, plans targets with fallbacks, writes them."""

    def __init__(
        self,
        settings: Settings,
        modes: Mapping[str, PoolMode],
        writer: FloorWriter,
        events: EventRecorder,
        dry_run: bool,
    ) -> None:
        self._settings = settings
        self._modes = modes
        self._writer = writer
        self._events = events
        self._dry_run = dry_run
        self.availability = PoolAvailability()

    def observe(self, now: pd.Timestamp) -> PoolCycle:
        cycle = PoolCycle()
        for name, mode in self._modes.items():
            try:
                cycle.observations[name] = mode.observe(now)
            except PeakcastError as error:
                logger.warning("Could not read pool %s: %s", name, error)
                cycle.errors[name] = str(error)
        return cycle

    def plan(
        self, cycle: PoolCycle, decisions: Mapping[str, FloorDecision], now: pd.Timestamp
    ) -> None:
        for observation in cycle.observations.values():
            if self._note_errors(observation, now):
                cycle.timed_out.add(observation.pool.name)
        desired = {
            name: floor.desired for name, floor in decisions.items() if name in cycle.observations
        }
        available = {
            name: obs.readiness.ready_nodes + obs.readiness.coming_nodes
            for name, obs in cycle.observations.items()
        }
        pools = {pool.name: pool for pool in self._settings.pools}
        burst = {
            pool.name for pool in self._settings.pools if pool.kind == "burst" and pool.actuator
        }
        marks = {name: self.availability.status(name, now) for name in desired}
        fallbacks = {
            name: fallback_pools(name, self._settings.workloads, burst) for name in desired
        }
        cycle.targets = plan_targets(desired, available, pools, marks, fallbacks)
        for target in cycle.targets.values():
            for note in target.notes:
                kind, _, message = note.partition(": ")
                if kind in ("QuotaLimited", "CapacityUnavailable"):
                    cycle.conditions.append(PoolCondition(target.pool, kind, message))
            if target.unmet_gpus:
                cycle.conditions.append(
                    PoolCondition(target.pool, "UnmetCapacity", f"{target.unmet_gpus} GPUs unmet")
                )

    def write(self, floor: FloorDecision, cycle: PoolCycle, now: pd.Timestamp) -> ApplyResult:
        pool = self._settings.pool(floor.name)
        observation = cycle.observations.get(floor.name)
        if pool.actuator is None:
            return unwritten_pool_result(floor)
        if observation is None:
            message = cycle.errors.get(floor.name, "pool not read")
            return _failed(floor, f"pool {floor.name}", "(not read)", message)
        if observation.obj is None:
            where = observation.target
            return _failed(floor, where.label, where.field_text, f"{where.label} not found")

        target = cycle.targets[floor.name]
        mode = self._modes[floor.name]
        value, note = mode.field_value(target.target, observation)
        raising_to: int | None = target.target
        if observation.current_nodes is not None and target.target <= observation.current_nodes:
            raising_to = None
        changes = node_phase_changes(
            peakcast_annotations(observation.obj),
            raising_to,
            observation.readiness.ready_nodes,
            now,
        )
        if floor.name in cycle.timed_out:
            # The timed-out raise is given up, so the next raise after the backoff starts
            # its own measurement and its own arrival timer.
            changes[PENDING_RAISE_ANNOTATION] = None
        notes = "; ".join(n for n in [*target.notes, note] if n)
        result = self._writer.write(
            WriteRequest(floor, observation.target, observation.obj, value, changes, notes)
        )
        self._report_limits(target, observation)
        if isinstance(mode, GPUNodePoolMode):
            mode.sync_status(observation, self._dry_run)
        return result

    def _note_errors(self, observation: PoolObservation, now: pd.Timestamp) -> bool:
        """Mark the pool unavailable on errors; return True when requested nodes timed out."""
        pool, readiness = observation.pool, observation.readiness
        actuator = pool.actuator
        if actuator is None:
            return False
        backoff = actuator.capacity_error_backoff_seconds
        has = readiness.ready_nodes + readiness.coming_nodes
        if readiness.capacity_error:
            self.availability.mark(pool.name, readiness.capacity_error, now, backoff)
        if readiness.quota_error:
            self.availability.mark(pool.name, readiness.quota_error, now, backoff, cap_nodes=has)
        annotations = peakcast_annotations(observation.obj or {})
        pending = PendingRaise.parse(annotations.get(PENDING_RAISE_ANNOTATION))
        if pending is None or readiness.present_nodes >= pending.nodes:
            return False
        stats = LeadTimeStats.from_annotation(annotations.get(NODE_PROVISIONING_ANNOTATION))
        timeout = node_arrival_timeout_seconds(stats, actuator.node_arrival_timeout_seconds)
        waited = (now - pending.at).total_seconds()
        if waited <= timeout:
            return False
        reason = (
            f"{pending.nodes - readiness.present_nodes} requested nodes did not register "
            f"within {timeout:.0f} s"
        )
        logger.warning("Pool %s is unavailable: %s", pool.name, reason)
        self.availability.mark(pool.name, reason, now, backoff)
        return True

    def _report_limits(self, target: PoolTarget, observation: PoolObservation) -> None:
        if target.limited_by is None or observation.obj is None or self._dry_run:
            return
        reason = "QuotaLimited" if target.limited_by == "quota" else "CapacityUnavailable"
        message = "; ".join(target.notes)
        logger.warning("Pool %s is %s: %s", target.pool, reason, message)
        self._events.record(observation.obj, "Warning", reason, "SetFloor", message)


def _failed(floor: FloorDecision, target: str, field_path: str, message: str) -> ApplyResult:
    return ApplyResult(
        floor=floor,
        target=target,
        field_path=field_path,
        old=floor.current,
        new=floor.desired,
        status="failed",
        message=message,
    )

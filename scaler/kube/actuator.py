"""``KubeActuator``: apply a cycle's decision to the cluster (the ``Actuator`` protocol).

Pool floors are written first, then workload floors. Raising a workload floor waits for its
gate. A gate that does not pass holds that floor (status ``held``), and the node side stays as
written. An API error on one floor is reported in its result and does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from forecaster.errors import ActionRejectedError, PeakcastError, TransientError
from scaler.actuators.base import ApplyResult
from scaler.actuators.dry_run import DryRunActuator
from scaler.core.budget import BudgetUsage
from scaler.core.decision import CycleDecision, FloorDecision
from scaler.core.guardrails import GuardrailState
from scaler.gates.base import Gate, GateContext
from scaler.kube.budget_usage import read_usage
from scaler.kube.client import KubeClient
from scaler.kube.controls import last_change_of
from scaler.kube.events import EventRecorder
from scaler.kube.leadtime import (
    NODE_PROVISIONING_ANNOTATION,
    WORKLOAD_START_ANNOTATION,
    LeadTimeStats,
    workload_phase_changes,
)
from scaler.kube.nodeside import PoolMode
from scaler.kube.objects import as_int, get_path, peakcast_annotations
from scaler.kube.ownership import OwnershipError, ReplicaOwner, resolve_owner
from scaler.kube.pool_cycle import PoolCondition, PoolCycle, PoolSide
from scaler.kube.readiness import PoolReadiness
from scaler.kube.resources import POD
from scaler.kube.writer import AnnotationHook, FloorWriter, WriteGuard, WriteRequest
from scaler.settings import Settings

logger = logging.getLogger(__name__)

Clock = Callable[[], pd.Timestamp]


class KubeActuator:
    """Writes pool and workload floors by server-side apply, gated, with Events."""

    def __init__(
        self,
        settings: Settings,
        client: KubeClient,
        modes: Mapping[str, PoolMode],
        gates: Mapping[str, Gate],
        events: EventRecorder,
        *,
        dry_run: bool,
        clock: Clock,
        guards: Sequence[WriteGuard] = (),
        annotation_hooks: Sequence[AnnotationHook] = (),
    ) -> None:
        self._settings = settings
        self._client = client
        self._gates = gates
        self._events = events
        self._dry_run = dry_run
        self._clock = clock
        self._writer = FloorWriter(
            client, events, dry_run, clock, guards=guards, annotation_hooks=annotation_hooks
        )
        self.write_guards = tuple(guards)
        self._pools = PoolSide(settings, modes, self._writer, events, dry_run)
        self.last_cycle = PoolCycle()

    @property
    def conditions(self) -> list[PoolCondition]:
        """Pool conditions of the last ``apply`` (quota limits, unavailable pools, unmet GPUs)."""
        return list(self.last_cycle.conditions)

    def pool_readiness(self) -> dict[str, PoolReadiness]:
        """Return the readiness of every written pool as read now."""
        cycle = self._pools.observe(self._clock())
        return {name: obs.readiness for name, obs in cycle.observations.items()}

    def current_floors(self) -> dict[tuple[str, str], int | None]:
        floors: dict[tuple[str, str], int | None] = {}
        cycle = self._pools.observe(self._clock())
        for pool in self._settings.pools:
            observation = cycle.observations.get(pool.name)
            floors[("pool", pool.name)] = observation.current_nodes if observation else None
        for workload in self._settings.workloads:
            try:
                owner = resolve_owner(self._client, workload)
            except PeakcastError:
                floors[("workload", workload.name)] = None
                continue
            floors[("workload", workload.name)] = as_int(
                get_path(owner.obj, owner.target.field_path)
            )
        return floors

    def lead_times(self) -> dict[tuple[str, str], LeadTimeStats]:
        """Return the measured lead-time statistics stored on the cluster's objects."""
        found: dict[tuple[str, str], LeadTimeStats] = {}
        cycle = self._pools.observe(self._clock())
        for name, observation in cycle.observations.items():
            text = peakcast_annotations(observation.obj or {}).get(NODE_PROVISIONING_ANNOTATION)
            found[("pool", name)] = LeadTimeStats.from_annotation(text, name)
        for workload in self._settings.workloads:
            try:
                owner = resolve_owner(self._client, workload)
            except PeakcastError:
                continue
            text = peakcast_annotations(owner.obj).get(WORKLOAD_START_ANNOTATION)
            found[("workload", workload.name)] = LeadTimeStats.from_annotation(text, workload.name)
        return found

    def guardrail_state(self) -> GuardrailState:
        """Return the cooldown clocks and today's budget usage recorded on the floor objects.

        For a process that starts without state, so a restart resets neither. A floor whose
        object cannot be read is left out.
        """
        now = self._clock()
        cycle = self._pools.observe(now)
        last_change: dict[tuple[str, str], pd.Timestamp] = {}
        usage: dict[str, BudgetUsage] = {}
        for name, observation in cycle.observations.items():
            if observation.obj is None:
                continue
            changed = last_change_of(observation.obj)
            if changed is not None:
                last_change[("pool", name)] = changed
            if observation.pool.kind == "burst":
                found = read_usage(
                    observation.obj, observation.current_nodes, name, now, self._settings
                )
                if found is not None:
                    usage[name] = found
        for workload in self._settings.workloads:
            try:
                owner = resolve_owner(self._client, workload)
            except PeakcastError:
                continue
            changed = last_change_of(owner.obj)
            if changed is not None:
                last_change[("workload", workload.name)] = changed
        return GuardrailState(usage=usage, last_change=last_change)

    def apply(self, decision: CycleDecision) -> list[ApplyResult]:
        now = self._clock()
        cycle = self._pools.observe(now)
        self._pools.plan(cycle, {floor.name: floor for floor in decision.pools}, now)
        self.last_cycle = cycle
        results = [self._pools.write(floor, cycle, now) for floor in decision.pools]
        results += [self._write_workload(floor, cycle, now) for floor in decision.workloads]
        return results

    def _write_workload(
        self, floor: FloorDecision, cycle: PoolCycle, now: pd.Timestamp
    ) -> ApplyResult:
        workload = self._settings.workload(floor.name)
        try:
            owner = resolve_owner(self._client, workload)
        except OwnershipError as error:
            logger.warning(
                "Workload %s/%s floor not written: %s", workload.namespace, workload.name, error
            )
            target, path = DryRunActuator(self._settings).describe_target(floor)
            return _result(floor, target, path, "conflict", str(error))
        except (ActionRejectedError, TransientError) as error:
            target, path = DryRunActuator(self._settings).describe_target(floor)
            return _result(floor, target, path, "failed", str(error))

        value, note = owner.owner.bounded(owner.obj, floor.desired)
        current = as_int(get_path(owner.obj, owner.target.field_path))
        request = WriteRequest(floor, owner.target, owner.obj, value, self._lead_time(owner), note)
        if current is not None and value <= current:
            return self._writer.write(request)

        gate = self._gates[workload.name]
        context = GateContext(
            workload=workload,
            current=current,
            desired=value,
            now=now,
            pools={n: o.readiness for n, o in cycle.observations.items() if n in workload.pools},
            pool_targets={n: t.target for n, t in cycle.targets.items() if n in workload.pools},
            unread_pools={n: e for n, e in cycle.errors.items() if n in workload.pools},
        )
        verdict = gate.evaluate(context)
        logger.info(
            "Gate %s %s the raise of workload %s/%s from %s to %d replicas: %s",
            gate.name,
            "passed" if verdict.passed else "held",
            workload.namespace,
            workload.name,
            "unset" if current is None else current,
            value,
            verdict.reason,
        )
        if verdict.passed:
            return self._writer.write(request)
        if not self._dry_run:
            self._events.record(owner.obj, "Warning", "GateHeld", "SetFloor", verdict.reason)
        return ApplyResult(
            floor=floor,
            target=owner.target.label,
            field_path=owner.target.field_text,
            old=current,
            new=value,
            status="held",
            message=verdict.reason,
        )

    def _lead_time(self, owner: ReplicaOwner) -> dict[str, str | None]:
        try:
            selector = owner.owner.pod_selector(self._client, owner.obj)
            if selector is None:
                return {}
            pods = self._client.list(POD, owner.target.namespace, label_selector=selector)
        except PeakcastError as error:
            logger.debug("No workload start times for %s: %s", owner.target.label, error)
            return {}
        return workload_phase_changes(peakcast_annotations(owner.obj), pods)


def _result(floor: FloorDecision, target: str, path: str, status: str, message: str) -> ApplyResult:
    return ApplyResult(
        floor=floor,
        target=target,
        field_path=path,
        old=floor.current,
        new=floor.desired,
        status=status,  # type: ignore[arg-type]
        message=message,
    )

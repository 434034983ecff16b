"""The dry-run actuator: reports the object, field and value it would set, and writes nothing."""

from __future__ import annotations

import logging

from scaler.actuators.base import ApplyResult
from scaler.core.decision import RULE_STATIC, CycleDecision, FloorDecision
from scaler.settings import Settings

logger = logging.getLogger(__name__)

# The field a workload floor goes to, per kind of object that owns the replicas.
WORKLOAD_FIELDS = {
    "hpa": ("HorizontalPodAutoscaler", "spec.minReplicas"),
    "keda": ("ScaledObject", "spec.minReplicaCount"),
    "kserve": ("InferenceService", "spec.predictor.minReplicas"),
    "deployment": ("Deployment", "spec.replicas"),
}


class DryRunActuator:
    """Implements the Actuator protocol without touching any cluster."""

    def __init__(
        self, settings: Settings, current: dict[tuple[str, str], int | None] | None = None
    ):
        self._settings = settings
        self._current = dict(current or {})

    def current_floors(self) -> dict[tuple[str, str], int | None]:
        return dict(self._current)

    def describe_target(self, floor: FloorDecision) -> tuple[str, str]:
        """Return the object and field path a floor would be written to."""
        if floor.kind == "pool":
            pool = self._settings.pool(floor.name)
            actuator = getattr(pool, "actuator", None)
            describe = getattr(actuator, "describe", None)
            if callable(describe):
                target, field_path = describe()
                return str(target), str(field_path)
            return f"GPUNodePool {floor.name}", "spec.desiredNodes"
        workload = self._settings.workload(floor.name)
        if workload.target is None:
            return f"workload {workload.namespace}/{workload.name}", "(no target configured)"
        kind, field_path = WORKLOAD_FIELDS[workload.target.kind]
        return f"{kind} {workload.target.namespace}/{workload.target.name}", field_path

    def apply(self, decision: CycleDecision) -> list[ApplyResult]:
        results = []
        for floor in decision.all_floors():
            if floor.rule == RULE_STATIC:
                continue  # a static pool has a fixed size; peakcast never writes it
            if floor.kind == "pool" and self._settings.pool(floor.name).actuator is None:
                logger.info(
                    "dry-run: pool %s has no actuator configured; its node floor %d is not "
                    "written (%s: %s)",
                    floor.name,
                    floor.desired,
                    floor.rule,
                    floor.reason,
                )
                results.append(unwritten_pool_result(floor))
                continue
            target, field_path = self.describe_target(floor)
            logger.info(
                "dry-run: would set %s %s from %s to %d (%s: %s)",
                target,
                field_path,
                floor.current,
                floor.desired,
                floor.rule,
                floor.reason,
            )
            results.append(
                ApplyResult(
                    floor=floor,
                    target=target,
                    field_path=field_path,
                    old=floor.current,
                    new=floor.desired,
                    status="dry_run",
                    message=floor.reason,
                )
            )
        return results


def unwritten_pool_result(floor: FloorDecision) -> ApplyResult:
    """Return the result of a pool floor that is not written because the pool has no actuator.

    The dry run and ``KubeActuator`` both return it, so ``plan`` prints the same line with and
    without --apply: ``unchanged: pool NAME (no actuator configured) OLD -> NEW (not written)``.
    """
    return ApplyResult(
        floor=floor,
        target=f"pool {floor.name}",
        field_path="(no actuator configured)",
        old=floor.current,
        new=floor.desired,
        status="unchanged",
        message="not written",
    )

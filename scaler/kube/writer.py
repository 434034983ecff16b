"""Write one floor into one integer field by server-side apply, and report what happened.

Every apply body carries the field and all ``peakcast.io/`` annotations, because server-side
apply removes a field its manager owned and then leaves out. When neither the field nor those
annotations would change, nothing is sent, so a repeated cycle makes no request and no Event.

Two kinds of hooks extend a write. A guard may skip it (a pause, a field another manager
reverted) and says why. An annotation hook adds annotation changes (the floor's expiry), unless
the request itself sets that annotation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from forecaster.errors import ActionRejectedError, TransientError
from scaler.actuators.base import ApplyResult
from scaler.core.decision import RULE_MISSING_DATA_HOLD, RULE_SAFE_FLOOR, FloorDecision
from scaler.kube.client import ApplyConflictError, KubeClient
from scaler.kube.events import EventRecorder, reason_from_rule
from scaler.kube.objects import (
    ANNOTATION_PREFIX,
    Obj,
    as_int,
    get_path,
    nested,
    peakcast_annotations,
)
from scaler.kube.resources import ResourceType

logger = logging.getLogger(__name__)

LAST_CHANGE_ANNOTATION = f"{ANNOTATION_PREFIX}last-change"
_MISSING_DATA_RULES = (RULE_MISSING_DATA_HOLD, RULE_SAFE_FLOOR)
_REASON_LIMIT = 300  # characters of the decision reason kept in the last-change annotation


@dataclass(frozen=True)
class FloorTarget:
    """The object and integer field that carry one floor."""

    rtype: ResourceType
    name: str
    namespace: str | None
    field_path: tuple[str, ...]

    @property
    def label(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.rtype.kind} {where}"

    @property
    def field_text(self) -> str:
        return ".".join(self.field_path)


@dataclass(frozen=True)
class WriteRequest:
    """One write: the floor, where it goes, the object as read, and the value to hold."""

    floor: FloorDecision
    target: FloorTarget
    obj: Obj
    value: int
    annotations: Mapping[str, str | None] = field(default_factory=dict)
    note: str = ""

    @property
    def current(self) -> int | None:
        return as_int(get_path(self.obj, self.target.field_path))


@dataclass(frozen=True)
class WriteSkip:
    """A guard's verdict that a write must not be sent, with the result status and why."""

    status: str  # an ApplyStatus: "held" or "conflict"
    message: str


WriteGuard = Callable[[WriteRequest], WriteSkip | None]
AnnotationHook = Callable[[WriteRequest], Mapping[str, str | None]]


def unseen_floor_guard(request: WriteRequest) -> WriteSkip | None:
    """Hold a missing-data decision that would lower a floor it did not know.

    A floor that could not be read when the cycle decided (an API error or timeout) reaches the
    policy as unknown. With data missing too, the policy then plans from the bounds or the safe
    floor. Writing that value over a higher floor read now would scale down because data is
    missing, so the floor is held and the next cycle decides with the value it reads.
    """
    floor, current = request.floor, request.current
    if floor.rule not in _MISSING_DATA_RULES:
        return None
    if floor.current is not None or current is None or request.value >= current:
        return None
    return WriteSkip(
        "held",
        f"{request.target.field_text} of {request.target.label} was unknown when the cycle "
        f"decided, so peakcast kept {current} instead of lowering it to {request.value}",
    )


class FloorWriter:
    """Applies floors with one field manager, emitting an Event per change or conflict."""

    def __init__(
        self,
        client: KubeClient,
        events: EventRecorder,
        dry_run: bool,
        clock: Callable[[], pd.Timestamp],
        *,
        guards: Sequence[WriteGuard] = (),
        annotation_hooks: Sequence[AnnotationHook] = (),
    ) -> None:
        self._client = client
        self._events = events
        self._dry_run = dry_run
        self._clock = clock
        self._guards = tuple(guards)
        self._annotation_hooks = tuple(annotation_hooks)

    def write(self, request: WriteRequest) -> ApplyResult:
        unseen = unseen_floor_guard(request)
        if unseen is not None:
            return self._result(request, unseen.status, unseen.message)
        for guard in self._guards:
            skip = guard(request)
            if skip is not None:
                return self._result(request, skip.status, skip.message)
        target, current, value = request.target, request.current, request.value
        old_annotations = peakcast_annotations(request.obj)
        new_annotations = _merged(old_annotations, request.annotations)
        for hook in self._annotation_hooks:
            changes = hook(request)
            own = {k: v for k, v in changes.items() if k not in request.annotations}
            new_annotations = _merged(new_annotations, own)
        if current != value:
            new_annotations[LAST_CHANGE_ANNOTATION] = self._last_change(request)
        if current == value and new_annotations == old_annotations:
            return self._result(request, "unchanged", request.note)

        body = self._body(request, new_annotations)
        try:
            self._client.apply(target.rtype, body, dry_run=self._dry_run)
        except ApplyConflictError as error:
            return self._conflict(request, error)
        except (ActionRejectedError, TransientError) as error:
            logger.warning(
                "Writing %s=%s on %s failed: %s", target.field_text, value, target.label, error
            )
            return self._result(request, "failed", str(error))

        if self._dry_run:
            return self._result(request, "dry_run", request.note)
        if current == value:
            logger.debug("Updated peakcast annotations on %s", target.label)
            return self._result(request, "unchanged", request.note)
        return self._changed(request)

    def _changed(self, request: WriteRequest) -> ApplyResult:
        target, current, value = request.target, request.current, request.value
        raised = current is None or value > current
        direction = "Raised" if raised else "Lowered"
        note = f"{direction} {target.field_text} from {current} to {value}: {request.floor.reason}"
        if request.note:
            note += f" ({request.note})"
        logger.info(
            "%s %s %s from %s to %s (rule %s)",
            direction,
            target.label,
            target.field_text,
            current,
            value,
            request.floor.rule,
        )
        self._events.record(
            request.obj,
            "Normal",
            reason_from_rule(request.floor.rule),
            "RaiseFloor" if raised else "LowerFloor",
            note,
        )
        return self._result(request, "changed", request.note)

    def _conflict(self, request: WriteRequest, error: ApplyConflictError) -> ApplyResult:
        target = request.target
        managers = ", ".join(error.managers) or "another field manager"
        message = (
            f"{target.field_text} of {target.label} is owned by {managers}; peakcast left it at "
            f"{request.current} instead of {request.value}"
        )
        logger.warning(
            "Field conflict on %s: %s is owned by %s, requested %s, left at %s",
            target.label,
            target.field_text,
            managers,
            request.value,
            request.current,
        )
        if not self._dry_run:
            self._events.record(request.obj, "Warning", "FieldConflict", "SetFloor", message)
        return self._result(request, "conflict", message)

    def _body(self, request: WriteRequest, new_annotations: dict[str, str]) -> Obj:
        target = request.target
        metadata: Obj = {"name": target.name}
        if target.namespace:
            metadata["namespace"] = target.namespace
        if new_annotations:
            metadata["annotations"] = new_annotations
        return {
            "apiVersion": target.rtype.api_version,
            "kind": target.rtype.kind,
            "metadata": metadata,
            **nested(target.field_path, request.value),
        }

    def _last_change(self, request: WriteRequest) -> str:
        record = {
            "at": self._clock().isoformat(),
            "from": request.current,
            "to": request.value,
            "rule": request.floor.rule,
            # Shortened: annotations count towards the object's 256 KiB annotation limit.
            "reason": request.floor.reason[:_REASON_LIMIT],
        }
        return json.dumps(record, separators=(",", ":"))

    def _result(self, request: WriteRequest, status: str, message: str) -> ApplyResult:
        return ApplyResult(
            floor=request.floor,
            target=request.target.label,
            field_path=request.target.field_text,
            old=request.current,
            new=request.value,
            status=status,  # type: ignore[arg-type]
            message=message,
        )


def _merged(old: dict[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    merged = dict(old)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged

"""Operator pauses set on the cluster: the ``peakcast.io/paused`` annotation.

An operator pauses one floor with
``kubectl annotate hpa llm peakcast.io/paused="load test until 14:00"`` and resumes it by
removing the annotation. Any value except ``false``, ``no``, ``0`` and the empty string pauses,
and a value other than ``true``, ``yes`` or ``1`` is shown as the reason. A paused object is
never written: not by the cycle, not by ``peakcast expire-floors``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from scaler.core.decision import RULE_PAUSED
from scaler.core.guardrails import OperatorControls
from scaler.kube.inventory import FloorObject
from scaler.kube.objects import ANNOTATION_PREFIX, object_annotations
from scaler.kube.writer import WriteRequest, WriteSkip

logger = logging.getLogger(__name__)

PAUSED_ANNOTATION = f"{ANNOTATION_PREFIX}paused"
_NOT_PAUSED = {"", "false", "no", "0"}
_PLAIN_YES = {"true", "yes", "1"}


def pause_reason(obj: Mapping[str, Any]) -> str | None:
    """Return why the object is paused by its annotation, or None when it is not."""
    value = object_annotations(obj).get(PAUSED_ANNOTATION)
    if value is None or value.strip().lower() in _NOT_PAUSED:
        return None
    if value.strip().lower() in _PLAIN_YES:
        return f"annotation {PAUSED_ANNOTATION} is set"
    return f"annotation {PAUSED_ANNOTATION}: {value.strip()}"


def read_controls(objects: Sequence[FloorObject]) -> OperatorControls:
    """Return the pauses the objects' annotations set, for ``decide(..., controls=...)``."""
    paused = {
        (item.kind, item.name): reason
        for item in objects
        if item.obj is not None and (reason := pause_reason(item.obj)) is not None
    }
    return OperatorControls(paused=paused)


def pause_guard(request: WriteRequest) -> WriteSkip | None:
    """Skip the write of a paused floor (by decision rule or by the object's annotation)."""
    reason = pause_reason(request.obj)
    if request.floor.rule == RULE_PAUSED:
        reason = reason or request.floor.reason
    if reason is None:
        return None
    logger.debug(
        "Not writing %s of %s: the floor is paused (%s)",
        request.target.field_text,
        request.target.label,
        reason,
    )
    return WriteSkip("held", f"paused: {reason}")

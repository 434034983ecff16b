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

import pandas as pd

from scaler.core.decision import RULE_PAUSED
from scaler.core.guardrails import GuardrailState, OperatorControls
from scaler.kube.inventory import FloorObject, annotation_record
from scaler.kube.objects import (
    ANNOTATION_PREFIX,
    object_annotations,
    peakcast_annotations,
    timestamp,
)
from scaler.kube.writer import LAST_CHANGE_ANNOTATION, WriteRequest, WriteSkip
from scaler.settings_guardrails import GuardrailSettings

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
    paused: dict[tuple[str, str], str] = {
        (item.kind, item.name): reason
        for item in objects
        if item.obj is not None and (reason := pause_reason(item.obj)) is not None
    }
    return OperatorControls(paused=paused)


def guardrail_state_from(objects: Sequence[FloorObject]) -> GuardrailState:
    """Rebuild the cooldown clock of each floor from its ``last-change`` annotation.

    For a process that starts without state, so a restart does not reset cooldowns.
    """
    last_change: dict[tuple[str, str], pd.Timestamp] = {}
    for item in objects:
        at = last_change_of(item.obj or {})
        if at is not None:
            last_change[(item.kind, item.name)] = at
    return GuardrailState(last_change=last_change)


def last_change_of(obj: Mapping[str, Any]) -> pd.Timestamp | None:
    """Return when peakcast last changed the object's floor, from ``last-change``."""
    record = annotation_record(peakcast_annotations(obj), LAST_CHANGE_ANNOTATION)
    return timestamp(record.get("at"))


class PauseGuard:
    """Write guard of ``FloorWriter`` that skips every write of a paused floor.

    A floor is paused by its decision rule, by ``guardrails`` in the config, or by the
    object's annotation. The config and the annotation are checked again at write time, so a
    pause also applies to a floor that a later step (such as live signals) raised after
    ``decide``.
    """

    def __init__(self, guardrails: GuardrailSettings) -> None:
        self._guardrails = guardrails

    def __call__(self, request: WriteRequest) -> WriteSkip | None:
        reason = pause_reason(request.obj) or self._configured(
            request.floor.kind, request.floor.name
        )
        if reason is None and request.floor.rule == RULE_PAUSED:
            reason = request.floor.reason
        if reason is None:
            return None
        logger.debug(
            "Not writing %s of %s: the floor is paused (%s)",
            request.target.field_text,
            request.target.label,
            reason,
        )
        return WriteSkip("held", f"paused: {reason}")

    def _configured(self, kind: str, name: str) -> str | None:
        if self._guardrails.paused:
            return "guardrails.paused is set"
        listed = (
            self._guardrails.paused_pools if kind == "pool" else self._guardrails.paused_workloads
        )
        return f"listed in guardrails.paused_{kind}s" if name in listed else None

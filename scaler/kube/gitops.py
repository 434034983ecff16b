"""Detect a floor that another field manager reverted, and report it instead of fighting.

A GitOps controller (Argo CD, Flux) that has the floor field in its manifests sets it back on
every sync, and a person may change it with ``kubectl edit``. Either way the field's value
differs from the value peakcast last wrote (``peakcast.io/last-change``), and ``managedFields``
shows another manager as its owner (or the field is gone).

peakcast then records a Warning Event ``FloorReverted`` naming the managers, logs it, keeps
the record in the annotation ``peakcast.io/reverted``, and writes no floor to that field for
``guardrails.revert_backoff_seconds``. After the back-off the check runs again. peakcast never
forces ownership back, so the field stays with its owner until that manager lets it go, for
example once Argo CD ignores the field (docs/PRODUCTION.md shows how).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecaster.errors import PeakcastError
from scaler.kube.client import KubeClient
from scaler.kube.events import EventRecorder
from scaler.kube.objects import (
    ANNOTATION_PREFIX,
    Obj,
    as_int,
    field_owners,
    get_path,
    peakcast_annotations,
    timestamp,
)
from scaler.kube.writer import LAST_CHANGE_ANNOTATION, FloorTarget, WriteRequest, WriteSkip

logger = logging.getLogger(__name__)

REVERTED_ANNOTATION = f"{ANNOTATION_PREFIX}reverted"


@dataclass(frozen=True)
class Revert:
    """A floor field whose value another manager changed after peakcast wrote it."""

    target: str
    field: str
    written: int
    current: int | None
    managers: tuple[str, ...]

    def describe(self) -> str:
        managers = ", ".join(self.managers) or "an unknown field manager"
        return (
            f"{self.field} of {self.target} is {self.current} but peakcast last wrote "
            f"{self.written}; it is now owned by {managers}"
        )


def last_written_value(obj: Mapping[str, Any]) -> int | None:
    """Return the value peakcast last wrote, from its ``last-change`` annotation."""
    text = peakcast_annotations(obj).get(LAST_CHANGE_ANNOTATION)
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return as_int(record.get("to")) if isinstance(record, dict) else None


def detect_revert(obj: Mapping[str, Any], target: FloorTarget, field_manager: str) -> Revert | None:
    """Return the revert of ``target``'s field on ``obj``, or None when there is none.

    A revert needs a value peakcast wrote, a different value now, and a field that
    ``field_manager`` no longer owns: another manager owns it, or it was removed. A field that
    no manager owns any more is not a revert, because writing it takes it from no one.
    """
    written = last_written_value(obj)
    if written is None:
        return None
    current = as_int(get_path(obj, target.field_path))
    if current == written:
        return None
    owners = field_owners(obj, target.field_path)
    if field_manager in owners:
        return None
    others = tuple(sorted(set(owners) - {field_manager}))
    if not others and current is not None:
        return None
    return Revert(target.label, target.field_text, written, current, others)


@dataclass(frozen=True)
class RevertRecord:
    """The revert peakcast reported last, kept in ``peakcast.io/reverted``."""

    at: pd.Timestamp
    value: int | None
    managers: tuple[str, ...]

    @classmethod
    def parse(cls, text: str | None) -> RevertRecord | None:
        if not text:
            return None
        try:
            record = json.loads(text)
            at = timestamp(record["at"])
            managers = tuple(str(m) for m in record.get("by", []))
        except (ValueError, TypeError, KeyError):
            return None
        return None if at is None else cls(at, as_int(record.get("value")), managers)

    def to_annotation(self) -> str:
        record = {"at": self.at.isoformat(), "value": self.value, "by": list(self.managers)}
        return json.dumps(record, separators=(",", ":"))


class RevertGuard:
    """Write guard and annotation hook of ``FloorWriter`` for reverted floor fields.

    ``reverts`` contains the reverts found in this process, keyed by object label, for the
    service to report as a condition.
    """

    def __init__(
        self,
        client: KubeClient,
        events: EventRecorder,
        backoff_seconds: int,
        dry_run: bool,
        clock: Callable[[], pd.Timestamp],
    ) -> None:
        self._client = client
        self._events = events
        self._backoff = pd.Timedelta(seconds=backoff_seconds)
        self._dry_run = dry_run
        self._clock = clock
        self.reverts: dict[str, Revert] = {}

    def __call__(self, request: WriteRequest) -> WriteSkip | None:
        revert = detect_revert(request.obj, request.target, self._client.field_manager)
        if revert is None:
            self.reverts.pop(request.target.label, None)
            return None
        self.reverts[request.target.label] = revert
        now = self._clock()
        record = RevertRecord.parse(peakcast_annotations(request.obj).get(REVERTED_ANNOTATION))
        if record is not None and _same(record, revert) and now < record.at + self._backoff:
            until = (record.at + self._backoff).isoformat()
            return WriteSkip("conflict", f"{revert.describe()}; peakcast waits until {until}")
        self._report(request, revert, now)
        until = (now + self._backoff).isoformat()
        return WriteSkip("conflict", f"{revert.describe()}; peakcast waits until {until}")

    def clear(self, request: WriteRequest) -> dict[str, str | None]:
        """Annotation hook: drop the revert record once the field is peakcast's again."""
        if REVERTED_ANNOTATION in peakcast_annotations(request.obj):
            return {REVERTED_ANNOTATION: None}
        return {}

    def _report(self, request: WriteRequest, revert: Revert, now: pd.Timestamp) -> None:
        message = (
            f"{revert.describe()}. peakcast does not take the field back and leaves it alone "
            f"for {self._backoff.total_seconds():.0f} s; exclude the field from your GitOps "
            "manifests or ignore it there, so the floor can be written again"
        )
        logger.warning(
            "Floor reverted on %s: %s, requested %s", revert.target, message, request.value
        )
        if self._dry_run:
            return
        self._events.record(request.obj, "Warning", "FloorReverted", "SetFloor", message)
        record = RevertRecord(now, revert.current, revert.managers)
        self._annotate(request, record)

    def _annotate(self, request: WriteRequest, record: RevertRecord) -> None:
        # The body leaves the floor field out: peakcast does not own it now, so server-side
        # apply leaves its value to its owner.
        target = request.target
        annotations = peakcast_annotations(request.obj)
        annotations[REVERTED_ANNOTATION] = record.to_annotation()
        metadata: Obj = {"name": target.name, "annotations": annotations}
        if target.namespace:
            metadata["namespace"] = target.namespace
        body = {"apiVersion": target.rtype.api_version, "kind": target.rtype.kind}
        try:
            self._client.apply(target.rtype, {**body, "metadata": metadata})
        except PeakcastError as error:
            logger.warning("Could not record the revert on %s: %s", target.label, error)


def _same(record: RevertRecord, revert: Revert) -> bool:
    return record.value == revert.current and record.managers == revert.managers

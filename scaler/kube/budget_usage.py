"""GPU-hours a burst pool's floor held today, kept on the pool's object across restarts.

The planning cycle counts budget usage in memory (``scaler.core.budget``). So that a restarted
peakcast does not count the day from zero, every write that changes a burst pool's floor also
records on the pool's object, in the annotation ``peakcast.io/gpu-hours-today``:

    {"day": "2026-03-02", "gpu_hours": 41.5, "at": "2026-03-02T10:00:00Z", "nodes": 6}

``gpu_hours`` is the usage of budget day ``day`` up to ``at``, when the floor became ``nodes``.
The floor keeps that value until the next change, which writes a new record, so the usage at
any later time is ``gpu_hours + nodes x GPUs per node x hours since at``. Only changes write,
so the record adds no API request to a cycle that writes nothing.

NOTE: a floor that another field manager changed (a manual edit, a GitOps sync) is counted at
the value read when peakcast next writes or restarts, not from the time it changed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping

import pandas as pd

from scaler.core.budget import BudgetUsage, account
from scaler.kube.inventory import annotation_record
from scaler.kube.objects import ANNOTATION_PREFIX, Obj, peakcast_annotations, timestamp
from scaler.kube.writer import LAST_CHANGE_ANNOTATION, WriteRequest
from scaler.settings import Settings

logger = logging.getLogger(__name__)

BUDGET_USAGE_ANNOTATION = f"{ANNOTATION_PREFIX}gpu-hours-today"

Clock = Callable[[], pd.Timestamp]


def read_usage(
    obj: Obj, current_nodes: int | None, pool: str, now: pd.Timestamp, settings: Settings
) -> BudgetUsage | None:
    """Return the pool's usage today up to ``now`` from its record; None without a record.

    The floor read now (``current_nodes``) counts as held since the record's time, because
    every change peakcast makes writes a new record. An unreadable record reads as missing.
    """
    record = _parse(peakcast_annotations(obj), pool)
    if record is None:
        return None
    usage, nodes = record
    held = current_nodes if current_nodes is not None else nodes
    gpus = held * settings.pool(pool).gpus_per_node
    return account(usage, gpus, now, settings)


class BudgetUsageRecorder:
    """Annotation hook of ``FloorWriter`` that updates a burst pool's usage record.

    It adds the record on each write that changes the floor, and once to a floor that peakcast
    wrote before this process started (it carries ``last-change``) but has no record yet. A
    floor peakcast never wrote gets no record until peakcast changes it.
    """

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._burst = {pool.name for pool in settings.pools if pool.kind == "burst"}

    def __call__(self, request: WriteRequest) -> dict[str, str | None]:
        floor = request.floor
        if floor.kind != "pool" or floor.name not in self._burst:
            return {}
        now = self._clock()
        annotations = peakcast_annotations(request.obj)
        if request.current == request.value and (
            BUDGET_USAGE_ANNOTATION in annotations or LAST_CHANGE_ANNOTATION not in annotations
        ):
            return {}
        usage = read_usage(request.obj, request.current, floor.name, now, self._settings)
        if usage is None:
            # No record yet: the usage before this write is unknown, so the day counts from now.
            usage = account(None, None, now, self._settings)
        return {BUDGET_USAGE_ANNOTATION: _render(usage, request.value)}


def _render(usage: BudgetUsage, nodes: int) -> str:
    at = usage.at.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {
        "day": usage.day.isoformat(),
        "gpu_hours": round(usage.gpu_hours, 6),
        "at": at,
        "nodes": nodes,
    }
    return json.dumps(record, separators=(",", ":"))


def _parse(annotations: Mapping[str, str], pool: str) -> tuple[BudgetUsage, int] | None:
    record = annotation_record(annotations, BUDGET_USAGE_ANNOTATION)
    if not record:
        return None
    try:
        day = dt.date.fromisoformat(str(record["day"]))
        gpu_hours = float(record["gpu_hours"])
        nodes = int(record["nodes"])
    except (KeyError, TypeError, ValueError):
        day, gpu_hours, nodes = None, -1.0, -1
    at = timestamp(record.get("at"))
    if day is None or at is None or gpu_hours < 0 or nodes < 0:
        logger.warning(
            "pool %s: the %s annotation is unreadable and is ignored: %s",
            pool,
            BUDGET_USAGE_ANNOTATION,
            annotations.get(BUDGET_USAGE_ANNOTATION),
            extra={"pool": pool},
        )
        return None
    return BudgetUsage(day, gpu_hours, at), nodes

"""Measured lead times, kept as annotations on the objects peakcast writes.

Two phases are measured. Node provisioning runs from the cycle that raised a pool's floor to
the first cycle that sees that many GPU-ready nodes, so its resolution is one cycle. Workload
start runs from a pod's ``PodScheduled`` to its ``Ready`` condition (image pull, model load,
readiness probe). The statistics live in annotations on the pool object and on the object that
carries the workload floor, so a restarted peakcast continues from them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from scaler.kube.objects import ANNOTATION_PREFIX, condition, get_path, timestamp
from scaler.settings import Settings

logger = logging.getLogger(__name__)

NODE_PROVISIONING_ANNOTATION = f"{ANNOTATION_PREFIX}node-provisioning-seconds"
WORKLOAD_START_ANNOTATION = f"{ANNOTATION_PREFIX}workload-start-seconds"
PENDING_RAISE_ANNOTATION = f"{ANNOTATION_PREFIX}floor-raised"
MAX_SAMPLES = 50  # the newest samples kept; older ones age out so the statistic follows drift
MIN_SAMPLES = 3  # below this many samples the configured lead time is used
ARRIVAL_TIMEOUT_FACTOR = 1.5  # node-never-arrived timeout as a multiple of the measured p95


@dataclass(frozen=True)
class LeadTimeStats:
    """Recent samples of one lead-time phase, in seconds."""

    samples: tuple[float, ...] = ()
    watermark: pd.Timestamp | None = None  # newest pod Ready time already counted

    @property
    def count(self) -> int:
        return len(self.samples)

    def quantile(self, level: float) -> float | None:
        """Return the nearest-rank quantile, or None without samples."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(level * len(ordered)) - 1)]

    def add(self, seconds: Iterable[float], watermark: pd.Timestamp | None = None) -> LeadTimeStats:
        kept = (*self.samples, *(round(max(0.0, s), 1) for s in seconds))[-MAX_SAMPLES:]
        return LeadTimeStats(kept, watermark or self.watermark)

    def to_annotation(self) -> str:
        record: dict[str, Any] = {
            "count": self.count,
            "p50": self.quantile(0.5),
            "p95": self.quantile(0.95),
            "samples": list(self.samples),
        }
        if self.watermark is not None:
            record["watermark"] = self.watermark.isoformat()
        return json.dumps(record, separators=(",", ":"))

    @classmethod
    def from_annotation(cls, text: str | None, where: str = "") -> LeadTimeStats:
        """Parse the annotation; an unreadable one is logged and read as no samples."""
        if not text:
            return cls()
        try:
            record = json.loads(text)
            samples = tuple(float(s) for s in record.get("samples", []))
            watermark = timestamp(record.get("watermark"))
        except (ValueError, TypeError, AttributeError) as error:
            logger.warning("Ignoring unreadable lead-time annotation on %s: %s", where, error)
            return cls()
        return cls(samples, watermark)


def effective_seconds(stats: LeadTimeStats, configured_seconds: int) -> int:
    """Return the measured p95 once there are enough samples, else the configured value."""
    p95 = stats.quantile(0.95)
    if stats.count < MIN_SAMPLES or p95 is None:
        return configured_seconds
    return math.ceil(p95)


def node_arrival_timeout_seconds(stats: LeadTimeStats, configured_seconds: float) -> float:
    """Return how long requested nodes may take to register before the pool counts as failed.

    It is never below ``ARRIVAL_TIMEOUT_FACTOR`` times the measured p95, so a pool whose nodes
    are slow but do arrive is not declared failed and re-requested in a loop.
    """
    p95 = stats.quantile(0.95)
    if stats.count < MIN_SAMPLES or p95 is None:
        return configured_seconds
    return max(configured_seconds, ARRIVAL_TIMEOUT_FACTOR * p95)


def with_measured_lead_times(
    settings: Settings, stats: Mapping[tuple[str, str], LeadTimeStats]
) -> Settings:
    """Return ``settings`` with each pool's and workload's lead time set from ``stats``.

    ``stats`` is keyed like ``KubeActuator.lead_times()``: ("pool", name) or ("workload",
    name). A phase with fewer than ``MIN_SAMPLES`` samples keeps its configured value.
    """
    empty = LeadTimeStats()
    pools = [
        pool.model_copy(
            update={
                "node_provisioning_seconds": effective_seconds(
                    stats.get(("pool", pool.name), empty), pool.node_provisioning_seconds
                )
            }
        )
        for pool in settings.pools
    ]
    workloads = [
        workload.model_copy(
            update={
                "workload_start_seconds": effective_seconds(
                    stats.get(("workload", workload.name), empty), workload.workload_start_seconds
                )
            }
        )
        for workload in settings.workloads
    ]
    return settings.model_copy(update={"pools": pools, "workloads": workloads})


@dataclass(frozen=True)
class PendingRaise:
    """A raised pool floor whose nodes are not all GPU-ready yet."""

    at: pd.Timestamp
    nodes: int

    @classmethod
    def parse(cls, text: str | None) -> PendingRaise | None:
        if not text:
            return None
        try:
            record = json.loads(text)
            at = timestamp(record["at"])
            nodes = int(record["nodes"])
        except (ValueError, TypeError, KeyError):
            return None
        return None if at is None else cls(at, nodes)

    def to_annotation(self) -> str:
        return json.dumps({"at": self.at.isoformat(), "nodes": self.nodes}, separators=(",", ":"))


def node_phase_changes(
    annotations: Mapping[str, str],
    raising_to: int | None,
    ready_nodes: int,
    now: pd.Timestamp,
) -> dict[str, str | None]:
    """Return the annotation changes for the node-provisioning phase of one pool.

    ``raising_to`` is the new floor when this cycle raises it, else None. A pending raise whose
    GPU-ready nodes are now there becomes one sample. A new raise starts a measurement unless one
    is already running, because the first raise is measured to its own target.
    """
    changes: dict[str, str | None] = {}
    pending = PendingRaise.parse(annotations.get(PENDING_RAISE_ANNOTATION))
    if pending is not None and ready_nodes >= pending.nodes:
        stats = LeadTimeStats.from_annotation(annotations.get(NODE_PROVISIONING_ANNOTATION))
        seconds = (now - pending.at).total_seconds()
        changes[NODE_PROVISIONING_ANNOTATION] = stats.add([seconds]).to_annotation()
        changes[PENDING_RAISE_ANNOTATION] = None
        pending = None
    if raising_to is not None and pending is None and ready_nodes < raising_to:
        changes[PENDING_RAISE_ANNOTATION] = PendingRaise(now, raising_to).to_annotation()
    return changes


def workload_phase_changes(
    annotations: Mapping[str, str], pods: Iterable[Mapping[str, Any]]
) -> dict[str, str | None]:
    """Return the annotation change that adds newly Ready pods' scheduled-to-Ready times."""
    stats = LeadTimeStats.from_annotation(annotations.get(WORKLOAD_START_ANNOTATION))
    samples: list[float] = []
    newest = stats.watermark
    for pod in pods:
        measured = _start_time(pod)
        if measured is None:
            continue
        ready_at, seconds = measured
        if stats.watermark is not None and ready_at <= stats.watermark:
            continue
        samples.append(seconds)
        newest = ready_at if newest is None else max(newest, ready_at)
    if not samples:
        return {}
    return {WORKLOAD_START_ANNOTATION: stats.add(samples, newest).to_annotation()}


def _start_time(pod: Mapping[str, Any]) -> tuple[pd.Timestamp, float] | None:
    # A restarted container makes Ready flip again long after scheduling; skip such pods.
    statuses = get_path(pod, ("status", "containerStatuses")) or []
    if any(int(s.get("restartCount", 0)) > 0 for s in statuses if isinstance(s, Mapping)):
        return None
    scheduled, ready = condition(pod, "PodScheduled"), condition(pod, "Ready")
    if not scheduled or not ready or ready.get("status") != "True":
        return None
    start = timestamp(scheduled.get("lastTransitionTime"))
    end = timestamp(ready.get("lastTransitionTime"))
    if start is None or end is None or end < start:
        return None
    return end, (end - start).total_seconds()

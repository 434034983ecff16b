"""Floor expiry: every floor peakcast writes carries an expiry time, which its cycles renew.

Each write sets the annotation ``peakcast.io/floor-expires-at`` to now plus
``guardrails.floor_ttl_seconds``. A cycle that writes nothing else renews it once less than
half of the TTL is left, so a steady floor costs one request per half TTL, not one per cycle.

When renewals stop (a crash, a deleted Deployment, lost credentials), ``expire_floors`` returns
each expired floor to its baseline (``baseline_nodes`` of the pool or ``baseline_replicas`` of
the workload, by default the minimum) by server-side apply, removes the expiry annotation and
records an Event. ``peakcast expire-floors`` runs it from a CronJob. It never raises a floor,
and it leaves paused objects alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from forecaster.errors import PeakcastError
from scaler.core.decision import RULE_EXPIRED, FloorDecision
from scaler.kube.client import KubeClient
from scaler.kube.clusters import ClusterClients
from scaler.kube.controls import pause_reason
from scaler.kube.events import EventRecorder, default_reporting_instance
from scaler.kube.inventory import FloorObject, read_floor_objects
from scaler.kube.objects import ANNOTATION_PREFIX, peakcast_annotations, timestamp
from scaler.kube.writer import LAST_CHANGE_ANNOTATION, FloorWriter, WriteRequest
from scaler.settings import Settings

logger = logging.getLogger(__name__)

EXPIRES_ANNOTATION = f"{ANNOTATION_PREFIX}floor-expires-at"

Clock = Callable[[], pd.Timestamp]


def expires_at(annotations: dict[str, str]) -> pd.Timestamp | None:
    """Return the expiry time the annotation records, or None when absent or unreadable."""
    return timestamp(annotations.get(EXPIRES_ANNOTATION))


class FloorRenewal:
    """Annotation hook of ``FloorWriter`` that sets or renews a floor's expiry.

    Only floors peakcast wrote expire: a write that changes the value, or an object that
    already carries peakcast's expiry or ``last-change`` annotation. A value peakcast only
    keeps and never wrote (set by a person or a manifest) gets no expiry, so
    ``expire_floors`` never lowers it.
    """

    def __init__(self, ttl_seconds: int, clock: Clock) -> None:
        self._ttl = pd.Timedelta(seconds=ttl_seconds)
        self._clock = clock

    def __call__(self, request: WriteRequest) -> dict[str, str | None]:
        now = self._clock()
        annotations = peakcast_annotations(request.obj)
        expires = expires_at(annotations)
        changing = request.current != request.value
        written = expires is not None or LAST_CHANGE_ANNOTATION in annotations
        if not changing and not written:
            return {}
        if changing or expires is None or expires - now < self._ttl / 2:
            renewed = (now + self._ttl).tz_convert("UTC")
            return {EXPIRES_ANNOTATION: renewed.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return {}


@dataclass(frozen=True)
class ExpiryResult:
    """Outcome of ``expire_floors`` for one floor.

    ``status`` is one of: ``expired`` (lowered to the baseline), ``dry_run`` (would be),
    ``valid`` (not expired yet), ``at_baseline`` (expired but not above the baseline),
    ``no_expiry`` (no expiry annotation), ``paused``, ``unreadable``, ``conflict`` or
    ``failed`` (the write was rejected).
    """

    kind: str
    name: str
    target: str
    status: str
    current: int | None
    baseline: int | None
    expires_at: pd.Timestamp | None
    message: str = ""


def expire_floors(
    client: KubeClient | ClusterClients,
    settings: Settings,
    now: pd.Timestamp,
    *,
    dry_run: bool = False,
) -> list[ExpiryResult]:
    """Return every expired floor to its baseline and report what happened to each floor.

    ``client`` is the single cluster's client, or the clients of several clusters. With
    ``dry_run`` the writes are sent as server-side dry runs and no Event is recorded.
    """
    clients = (
        client if isinstance(client, ClusterClients) else ClusterClients.single(settings, client)
    )
    results = []
    for item in read_floor_objects(clients, settings):
        results.append(_expire_one(item, settings, now, dry_run))
    expired = sum(1 for result in results if result.status == "expired")
    logger.info(
        "Checked %d floors at %s: %d returned to their baseline", len(results), now, expired
    )
    return results


def _expire_one(
    item: FloorObject, settings: Settings, now: pd.Timestamp, dry_run: bool
) -> ExpiryResult:
    expires = expires_at(item.annotations)

    def result(status: str, baseline: int | None = None, message: str = "") -> ExpiryResult:
        return ExpiryResult(
            item.kind, item.name, item.label, status, item.value, baseline, expires, message
        )

    if item.obj is None or item.target is None:
        return result("unreadable", message=item.error)
    paused = pause_reason(item.obj)
    if paused is not None:
        return result("paused", message=paused)
    if expires is None:
        return result("no_expiry", message=f"no {EXPIRES_ANNOTATION} annotation")
    if expires > now:
        return result("valid")
    try:
        baseline, desired = _baseline_value(item, settings, now)
    except PeakcastError as error:
        return result("unreadable", message=str(error))
    current = item.value
    if current is not None and current <= baseline:
        return result("at_baseline", baseline)
    floor = FloorDecision(
        item.kind,
        item.name,
        desired,
        current,
        RULE_EXPIRED,
        _expired_reason(item, expires, desired),
    )
    request = WriteRequest(floor, item.target, item.obj, baseline, {EXPIRES_ANNOTATION: None})
    return _write_baseline(item, settings, now, dry_run, request, expires)


def _expired_reason(item: FloorObject, expires: pd.Timestamp, desired: int) -> str:
    unit = "node" if item.kind == "pool" else "replica"
    if desired != 1:
        unit += "s"
    return (
        f"the floor expired at {expires.isoformat()} because peakcast did not renew it; "
        f"returned to the baseline of {desired} {unit}"
    )


def _baseline_value(item: FloorObject, settings: Settings, now: pd.Timestamp) -> tuple[int, int]:
    """Return (field value, floor in nodes or replicas) of the baseline."""
    if item.kind == "pool":
        nodes = settings.pool(item.name).baseline
        if item.mode is None:
            return nodes, nodes
        value, _ = item.mode.field_value(nodes, item.mode.observe(now))
        return value, nodes
    replicas = settings.workload(item.name).baseline
    if item.owner is None or item.obj is None:
        return replicas, replicas
    value, _ = item.owner.owner.bounded(item.obj, replicas)
    return value, replicas


def _write_baseline(
    item: FloorObject,
    settings: Settings,
    now: pd.Timestamp,
    dry_run: bool,
    request: WriteRequest,
    expires: pd.Timestamp,
) -> ExpiryResult:
    writer = FloorWriter(item.client, _events(item.client, settings, now), dry_run, lambda: now)
    applied = writer.write(request)
    baseline = request.value
    status = {"changed": "expired", "dry_run": "dry_run"}.get(applied.status, applied.status)
    if status == "expired":
        logger.info(
            "%s %s: floor expired at %s; lowered %s of %s from %s to the baseline %s",
            item.kind,
            item.name,
            expires.isoformat(),
            request.target.field_text,
            item.label,
            item.value,
            baseline,
        )
    return ExpiryResult(
        item.kind, item.name, item.label, status, item.value, baseline, expires, applied.message
    )


def _events(client: KubeClient, settings: Settings, now: pd.Timestamp) -> EventRecorder:
    kube = settings.kubernetes
    instance = kube.event_reporting_instance or default_reporting_instance()
    return EventRecorder(client, kube.event_reporting_controller, instance, lambda: now)

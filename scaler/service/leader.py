"""Leader election with a ``coordination.k8s.io/v1`` Lease, so one replica acts at a time.

The rules follow client-go's leader election:

- A replica takes a Lease that does not exist (create), has no holder, or whose holder has not
  changed the record for ``leaseDurationSeconds`` as measured on this replica's monotonic
  clock (so clock skew between nodes does not matter). Every write is a replace carrying the
  ``resourceVersion`` that was read, so two replicas racing for the same Lease cannot both win:
  the loser gets 409 Conflict.
- The leader renews every retry period. ``is_leader`` turns false as soon as the last renewal is
  older than the renew deadline, even while a renewal request is still hanging, so a leader
  that cannot reach the API server stops acting before a follower may take over.
- ``release`` clears the holder, so a follower takes over at its next attempt instead of
  waiting for the lease duration.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pandas as pd
import urllib3
from kubernetes import client as k8s

logger = logging.getLogger(__name__)

# Followers wait between one and this many retry periods, so replicas started together do not
# send their attempts in lockstep.
FOLLOWER_JITTER = 1.2
# Duration written into a released Lease: it has no holder, so the value only matters to old
# clients that ignore an empty holder.
RELEASED_DURATION_SECONDS = 1

LeaderCallback = Callable[[bool], None]


class Leadership(Protocol):
    """The right to act: ``is_leader`` tells whether this replica may act, and ``run`` keeps
    that up to date until ``stop`` is set."""

    def is_leader(self) -> bool: ...

    def attempt(self) -> bool:
        """Try once to lead; return whether this replica leads afterwards."""
        ...

    def run(self, stop: threading.Event) -> None: ...

    def release(self) -> None: ...


class SoleReplica:
    """Leadership without election, for ``--no-leader-election`` and single-process use."""

    def __init__(self, on_change: LeaderCallback | None = None) -> None:
        self._on_change = on_change

    def is_leader(self) -> bool:
        return True

    def attempt(self) -> bool:
        return True

    def run(self, stop: threading.Event) -> None:
        if self._on_change is not None:
            self._on_change(True)
        stop.wait()

    def release(self) -> None:
        return


@dataclass(frozen=True)
class LeaseConfig:
    """The Lease's name and namespace, this replica's identity, and the timing in seconds."""

    name: str
    namespace: str
    identity: str
    lease_duration_seconds: float
    renew_deadline_seconds: float
    retry_period_seconds: float


@dataclass(frozen=True)
class _Observed:
    holder: str
    renew_time: object
    resource_version: str | None


class LeaseElector:
    """Acquires, renews and releases one Lease through the official client's CoordinationV1Api."""

    def __init__(
        self,
        api: k8s.CoordinationV1Api,
        config: LeaseConfig,
        *,
        on_change: LeaderCallback | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], pd.Timestamp] | None = None,
    ) -> None:
        self._api = api
        self.config = config
        self._on_change = on_change
        self._monotonic = monotonic
        self._wall_clock = wall_clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self._request_timeout = max(0.5, config.renew_deadline_seconds / 2)
        self._lock = threading.Lock()
        self._leader = False
        self._renewed_at = -math.inf
        self._observed: _Observed | None = None
        self._observed_at = 0.0
        self._failures = 0
        self._last_holder: str | None = None

    @property
    def where(self) -> str:
        return f"{self.config.namespace}/{self.config.name}"

    def is_leader(self) -> bool:
        """Tell whether this replica holds the lease and renewed it within the renew deadline."""
        with self._lock:
            fresh = self._monotonic() - self._renewed_at < self.config.renew_deadline_seconds
            return self._leader and fresh

    def run(self, stop: threading.Event) -> None:
        """Acquire and renew until ``stop`` is set; the caller releases afterwards."""
        logger.info("Leader election on Lease %s started as %s", self.where, self.config.identity)
        while not stop.is_set():
            self.attempt()
            stop.wait(self._wait_seconds())
        logger.info("Leader election on Lease %s stopped", self.where)

    def attempt(self) -> bool:
        """Make one acquire-or-renew attempt; return whether this replica leads afterwards."""
        succeeded = self._try_acquire_or_renew()
        now = self._monotonic()
        if succeeded:
            with self._lock:
                self._renewed_at = now
            self._set_leader(True)
        elif self._leader and now - self._renewed_at >= self.config.renew_deadline_seconds:
            logger.warning(
                "Lost the Lease %s: not renewed for %.1f s (renew deadline %.1f s); acting stops",
                self.where,
                now - self._renewed_at,
                self.config.renew_deadline_seconds,
            )
            self._set_leader(False)
        return self.is_leader()

    def release(self) -> None:
        """Clear the holder of the Lease when this replica holds it; errors are logged."""
        if not self._leader:
            return
        self._set_leader(False)
        try:
            lease = self._read()
            spec = lease.spec if lease is not None else None
            if lease is None or spec is None or spec.holder_identity != self.config.identity:
                return
            spec.holder_identity = None
            spec.lease_duration_seconds = RELEASED_DURATION_SECONDS
            spec.renew_time = self._wall_clock().to_pydatetime()
            self._api.replace_namespaced_lease(
                self.config.name, self.config.namespace, lease, _request_timeout=self._timeout()
            )
        except (k8s.ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            logger.warning(
                "Could not release the Lease %s: %s; followers take over once it expires",
                self.where,
                _describe(error),
            )
            return
        logger.info("Released the Lease %s (holder cleared)", self.where)

    # --- one attempt ---------------------------------------------------------------------------

    def _try_acquire_or_renew(self) -> bool:
        try:
            lease = self._read()
            if lease is None:
                return self._create()
            return self._take(lease)
        except (k8s.ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            self._note_failure(error)
            return False

    def _read(self) -> k8s.V1Lease | None:
        try:
            lease: k8s.V1Lease = self._api.read_namespaced_lease(
                self.config.name, self.config.namespace, _request_timeout=self._timeout()
            )
        except k8s.ApiException as error:
            if error.status == 404:
                return None
            raise
        return lease

    def _create(self) -> bool:
        now = self._wall_clock().to_pydatetime()
        body = k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(name=self.config.name, namespace=self.config.namespace),
            spec=k8s.V1LeaseSpec(
                holder_identity=self.config.identity,
                lease_duration_seconds=self._duration(),
                acquire_time=now,
                renew_time=now,
                lease_transitions=0,
            ),
        )
        try:
            self._api.create_namespaced_lease(
                self.config.namespace, body, _request_timeout=self._timeout()
            )
        except k8s.ApiException as error:
            if error.status == 409:
                logger.info("Lease %s was created by another replica first", self.where)
                return False
            raise
        self._note_success()
        return True

    def _take(self, lease: k8s.V1Lease) -> bool:
        spec = lease.spec or k8s.V1LeaseSpec()
        holder = spec.holder_identity or ""
        version = lease.metadata.resource_version if lease.metadata is not None else None
        self._observe(holder, spec.renew_time, version)
        mine = holder == self.config.identity
        if holder and not mine and not self._expired(spec):
            self._follow(holder)
            return False

        now = self._wall_clock().to_pydatetime()
        if not mine:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        spec.holder_identity = self.config.identity
        spec.lease_duration_seconds = self._duration()
        spec.renew_time = now
        lease.spec = spec
        try:
            self._api.replace_namespaced_lease(
                self.config.name, self.config.namespace, lease, _request_timeout=self._timeout()
            )
        except k8s.ApiException as error:
            if error.status == 409:
                logger.info(
                    "Lease %s changed while this replica wrote it; reading it again", self.where
                )
                return False
            raise
        if not mine:
            previous = f"from {holder}" if holder else "without a holder"
            logger.info(
                "Took over the Lease %s %s as %s", self.where, previous, self.config.identity
            )
        self._note_success()
        return True

    def _observe(self, holder: str, renew_time: object, resource_version: str | None) -> None:
        observed = _Observed(holder, renew_time, resource_version)
        if observed != self._observed:
            self._observed = observed
            self._observed_at = self._monotonic()

    def _expired(self, spec: k8s.V1LeaseSpec) -> bool:
        duration = spec.lease_duration_seconds or self.config.lease_duration_seconds
        return self._monotonic() - self._observed_at >= duration

    def _follow(self, holder: str) -> None:
        self._note_success()
        if self._leader:
            logger.warning(
                "Lost the Lease %s to %s; acting stops",
                self.where,
                holder,
                extra={"holder": holder},
            )
            self._set_leader(False)
        if holder != self._last_holder:
            logger.info("Lease %s is held by %s; following", self.where, holder)
            self._last_holder = holder

    # --- helpers -------------------------------------------------------------------------------

    def _set_leader(self, leader: bool) -> None:
        with self._lock:
            changed = leader != self._leader
            self._leader = leader
        if not changed:
            return
        if leader:
            self._last_holder = self.config.identity
            logger.info("This replica (%s) now leads and acts", self.config.identity)
        if self._on_change is not None:
            self._on_change(leader)

    def _note_failure(self, error: BaseException) -> None:
        self._failures += 1
        level = logging.WARNING if self._failures == 1 else logging.DEBUG
        logger.log(
            level,
            "Lease %s: attempt %d to acquire or renew failed: %s; retrying every %.1f s",
            self.where,
            self._failures,
            _describe(error),
            self.config.retry_period_seconds,
        )

    def _note_success(self) -> None:
        if self._failures:
            logger.info(
                "Lease %s reachable again after %d failed attempts", self.where, self._failures
            )
        self._failures = 0

    def _wait_seconds(self) -> float:
        period = self.config.retry_period_seconds
        if self._leader:
            return period
        return period * random.uniform(1.0, FOLLOWER_JITTER)

    def _duration(self) -> int:
        return max(1, math.ceil(self.config.lease_duration_seconds))

    def _timeout(self) -> float:
        return self._request_timeout


def _describe(error: BaseException) -> str:
    if isinstance(error, k8s.ApiException):
        return f"HTTP {error.status} {error.reason}"
    return str(error) or type(error).__name__

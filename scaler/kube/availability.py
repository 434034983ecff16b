"""Capacity and quota limits of pools, and moving GPUs a pool cannot get to fallback pools.

When a cloud reports that it has no machines of a pool's type (a capacity error) or that the
account's GPU quota is used up, asking again every cycle only repeats the failure and keeps the
workload waiting. Instead the pool is held at what it has for a backoff period, and the GPUs it
cannot get are requested from the burst pools that its workloads list after it. What no pool
can take is reported as unmet. Everything here is pure; time is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from scaler.settings import PoolSettings, WorkloadSettings


@dataclass(frozen=True)
class Unavailable:
    """A pool held back until ``until``; ``cap_nodes`` limits it instead when set (quota)."""

    reason: str
    until: pd.Timestamp
    cap_nodes: int | None = None


class PoolAvailability:
    """Backoffs per pool, kept in memory across cycles of one process.

    NOTE: the marks are not persisted. After a restart the next cycle requests the pool once
    more, reads the same error from the pool's conditions, and marks it again.
    """

    def __init__(self) -> None:
        self._marks: dict[str, Unavailable] = {}

    def mark(
        self,
        pool: str,
        reason: str,
        now: pd.Timestamp,
        backoff_seconds: float,
        cap_nodes: int | None = None,
    ) -> Unavailable:
        """Hold ``pool`` until ``backoff_seconds`` after the latest report of the error."""
        until = now + pd.Timedelta(seconds=backoff_seconds)
        previous = self._marks.get(pool)
        if previous is not None and previous.until > until:
            until = previous.until
        if previous is not None and cap_nodes is not None and previous.cap_nodes is not None:
            cap_nodes = min(cap_nodes, previous.cap_nodes)
        self._marks[pool] = Unavailable(reason, until, cap_nodes)
        return self._marks[pool]

    def status(self, pool: str, now: pd.Timestamp) -> Unavailable | None:
        """Return the pool's active mark; an expired mark is dropped."""
        mark = self._marks.get(pool)
        if mark is not None and mark.until <= now:
            del self._marks[pool]
            return None
        return mark


@dataclass
class PoolTarget:
    """The node count peakcast writes for one pool after limits and fallbacks."""

    pool: str
    desired: int
    target: int
    max_nodes: int
    notes: list[str] = field(default_factory=list)
    unmet_gpus: int = 0
    limited_by: str | None = None  # "capacity" or "quota" when the pool itself was held back


def fallback_pools(pool: str, workloads: Sequence[WorkloadSettings], burst: set[str]) -> list[str]:
    """Return the burst pools listed after ``pool`` by the workloads that use it, in order."""
    found: list[str] = []
    for workload in workloads:
        if pool not in workload.pools:
            continue
        after = workload.pools[workload.pools.index(pool) + 1 :]
        found.extend(p for p in after if p in burst and p not in found and p != pool)
    return found


def plan_targets(
    desired: Mapping[str, int],
    available: Mapping[str, int | None],
    pools: Mapping[str, PoolSettings],
    marks: Mapping[str, Unavailable | None],
    fallbacks: Mapping[str, Sequence[str]],
) -> dict[str, PoolTarget]:
    """Cap each pool by quota and capacity marks, then move the missing GPUs to fallbacks.

    ``available`` contains each pool's GPU-ready plus coming nodes. A pool held back by a
    capacity error keeps that many, so none of its nodes is removed and none is requested.
    """
    targets = {
        name: _limited(name, nodes, available, pools[name], marks)
        for name, nodes in desired.items()
    }
    for name, target in targets.items():
        if target.target >= target.desired:
            continue
        missing = (target.desired - target.target) * pools[name].gpus_per_node
        for fallback in fallbacks.get(name, ()):
            other = targets.get(fallback)
            if missing <= 0 or other is None or other.limited_by == "capacity":
                continue
            gpus_per_node = pools[fallback].gpus_per_node
            added = min(other.max_nodes - other.target, math.ceil(missing / gpus_per_node))
            if added <= 0:
                continue
            other.target += added
            nodes = "node" if added == 1 else "nodes"
            other.notes.append(f"+{added} {nodes} for pool {name} ({target.limited_by} limited)")
            missing -= added * gpus_per_node
        target.unmet_gpus = max(0, missing)
        if target.unmet_gpus:
            target.notes.append(f"{target.unmet_gpus} GPUs unmet: no fallback pool can take them")
    return targets


def _limited(
    name: str,
    desired: int,
    available: Mapping[str, int | None],
    pool: PoolSettings,
    marks: Mapping[str, Unavailable | None],
) -> PoolTarget:
    actuator = pool.actuator
    quota = actuator.gpu_quota if actuator is not None else None
    mark = marks.get(name)
    caps = [quota // pool.gpus_per_node] if quota is not None else []
    if mark is not None and mark.cap_nodes is not None:
        caps.append(mark.cap_nodes)
    quota_cap = min(caps) if caps else None
    max_nodes = pool.max_nodes if quota_cap is None else min(pool.max_nodes, quota_cap)
    target = PoolTarget(name, desired, desired, max_nodes)

    if mark is not None and mark.cap_nodes is None:
        has = available.get(name)
        held = desired if has is None else min(desired, has)
        if held < desired:
            target.target, target.limited_by = held, "capacity"
            nodes = "node" if held == 1 else "nodes"
            target.notes.append(f"CapacityUnavailable: held at {held} {nodes}: {mark.reason}")
        return target
    if quota_cap is not None and desired > quota_cap:
        target.target, target.limited_by = quota_cap, "quota"
        reason = mark.reason if mark is not None else f"gpu_quota is {quota} GPUs"
        nodes = "node" if quota_cap == 1 else "nodes"
        target.notes.append(f"QuotaLimited: capped at {quota_cap} {nodes}: {reason}")
    return target

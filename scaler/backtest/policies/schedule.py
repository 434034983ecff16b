"""The schedule baseline: an hour-of-week profile learned from the warm-up, as cron scalers use.

For each hour of the week the profile contains the highest replica requirement seen in that hour
during the warm-up. An hour the warm-up never saw takes the same hour of day, and failing that
the warm-up's highest requirement. Like a cron schedule written by a careful operator, each
floor starts its lead time early: replicas look ahead over the workload start phase, nodes over
node provisioning, workload start and margin, the same windows peakcast uses.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from scaler.backtest.policies.base import PolicyContext, Targets
from scaler.backtest.policies.leads import pool_lead_minutes, workload_lead_minutes
from scaler.backtest.trace import MINUTE, Observation
from scaler.core.capacity import FloatArray, IntArray, replicas_for_demand
from scaler.core.simulator import leading_max

WEEK_MINUTES = 7 * 24 * 60
HOURS_PER_WEEK = 7 * 24
# 1970-01-01, the Unix epoch, was a Thursday: weekday 3 with Monday = 0.
_EPOCH_WEEKDAY_MINUTES = 3 * 24 * 60


def minute_of_week(minutes_since_epoch: IntArray) -> IntArray:
    """Return the minute of the week (Monday 00:00 = 0) of UTC minutes since the epoch."""
    return (minutes_since_epoch + _EPOCH_WEEKDAY_MINUTES) % WEEK_MINUTES


def hourly_profile(minutes_since_epoch: np.ndarray, replicas: np.ndarray, default: int) -> IntArray:
    """Return the highest replica count per hour of the week; missing hours filled in.

    ``default`` is used when there is no sample at all.
    """
    hours = minute_of_week(minutes_since_epoch) // 60
    profile = np.full(HOURS_PER_WEEK, -1, dtype=np.int64)
    np.maximum.at(profile, hours, replicas)
    by_hour_of_day = profile.reshape(7, 24).max(axis=0)
    fallback = int(replicas.max()) if len(replicas) else default
    for hour in np.flatnonzero(profile < 0):
        same_hour = by_hour_of_day[hour % 24]
        profile[hour] = same_hour if same_hour >= 0 else fallback
    return profile


def _weekly_lookahead(per_minute: IntArray, lead_minutes: int) -> IntArray:
    """Return per minute of the week the max over the next ``lead_minutes`` (wrapping around)."""
    wrapped = np.concatenate([per_minute, np.resize(per_minute, lead_minutes)])
    return leading_max(wrapped, lead_minutes)[:WEEK_MINUTES].astype(np.int64)


class SchedulePolicy:
    """Floors from an hour-of-week profile, raised a lead time before each scheduled hour."""

    name: ClassVar[str] = "schedule"
    sees_future: ClassVar[bool] = False

    def __init__(self, context: PolicyContext) -> None:
        settings = context.settings
        warmup = context.warmup
        first = warmup.now - warmup.minute * MINUTE
        profiles: dict[str, IntArray] = {}
        for workload in settings.workloads:
            demand: FloatArray = warmup.demand(workload.name)
            seen = ~np.isnan(demand)
            epoch_minutes = first.as_unit("ns").value // MINUTE.value + np.arange(len(demand))
            raw = replicas_for_demand(demand[seen], workload.capacity)
            hourly = hourly_profile(epoch_minutes[seen], raw, workload.capacity.min_replicas)
            profiles[workload.name] = np.repeat(hourly, 60)

        placement = context.fleet.place(profiles)
        self._replicas = {
            name: _weekly_lookahead(values, workload_lead_minutes(settings, name))
            for name, values in profiles.items()
        }
        self._nodes = {
            pool.name: _weekly_lookahead(
                placement.nodes[pool.name], pool_lead_minutes(settings, pool.name, margin=True)
            )
            for pool in settings.pools
            if pool.kind == "burst"
        }

    def step(self, observation: Observation) -> Targets:
        epoch_minute = observation.now.as_unit("ns").value // MINUTE.value
        slot = (epoch_minute + _EPOCH_WEEKDAY_MINUTES) % WEEK_MINUTES
        return Targets(
            nodes={name: int(values[slot]) for name, values in self._nodes.items()},
            replicas={name: int(values[slot]) for name, values in self._replicas.items()},
        )

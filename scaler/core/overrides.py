"""Operator overrides: which are in force at a time, and the floors they set.

An override's window is read in its own IANA time zone, so "Friday 09:00-18:00
Europe/Berlin" starts at 07:00 UTC in summer and at 08:00 UTC in winter. A local start or end
that does not exist (skipped by a daylight-saving change) moves forward to the first valid
time, and one that exists twice uses the first of the two.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Mapping

import pandas as pd

from scaler.core.capacity import Fleet
from scaler.settings import Settings
from scaler.settings_guardrails import (
    WEEKDAYS,
    OverrideSettings,
    parse_local_datetime,
    parse_time_of_day,
)


def override_active(override: OverrideSettings, now: pd.Timestamp) -> bool:
    """Tell whether ``now`` (any zone) lies in the override's window, start included."""
    zone = zoneinfo.ZoneInfo(override.timezone)
    if override.days is None:
        start = _localize(parse_local_datetime(override.start), zone)
        end = _localize(parse_local_datetime(override.end), zone)
        return bool(start <= now < end)

    local = now.tz_convert(zone)
    time_of_day = local.time()
    start_time = parse_time_of_day(override.start)
    end_time = parse_time_of_day(override.end)
    today = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    if start_time < end_time:
        return today in override.days and start_time <= time_of_day < end_time
    # The window runs past midnight: the evening of a listed day, or the morning after one.
    return (today in override.days and time_of_day >= start_time) or (
        yesterday in override.days and time_of_day < end_time
    )


def _localize(value: dt.datetime, zone: zoneinfo.ZoneInfo) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(zone, ambiguous=True, nonexistent="shift_forward")


def active_overrides(settings: Settings, now: pd.Timestamp) -> list[OverrideSettings]:
    """Return the configured overrides in force at ``now``, in configuration order."""
    return [o for o in settings.guardrails.overrides if override_active(o, now)]


def workload_override_replicas(settings: Settings, override: OverrideSettings) -> int:
    """Return the replica floor a workload override sets, within the workload's max_replicas."""
    capacity = settings.workload(str(override.workload)).capacity
    if override.min_replicas is not None:
        replicas = override.min_replicas
    else:
        replicas = math.ceil((override.min_gpus or 0) / capacity.gpus_per_replica)
    return min(replicas, capacity.max_replicas)


def pool_override_nodes(settings: Settings, override: OverrideSettings) -> int:
    """Return the node floor a pool override sets, within the pool's max_nodes."""
    pool = settings.pool(str(override.pool))
    if override.min_nodes is not None:
        nodes = override.min_nodes
    else:
        nodes = math.ceil((override.min_gpus or 0) / pool.gpus_per_node)
    return min(nodes, pool.max_nodes)


def override_floors(
    settings: Settings, active: list[OverrideSettings]
) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]]]:
    """Return the node floor per pool and the replica floor per workload the overrides set.

    Each entry is (floor, names of the overrides behind it). The replicas of workload
    overrides are placed on the workload's pools as a plan would place them (static pools
    first), so the nodes they need raise those pools too.
    """
    workloads: dict[str, tuple[int, str]] = {}
    pools: dict[str, tuple[int, str]] = {}
    for override in active:
        kind, name = override.target
        if kind == "workload":
            _keep_max(workloads, name, workload_override_replicas(settings, override), override)
        else:
            _keep_max(pools, name, pool_override_nodes(settings, override), override)
    if workloads:
        _add_placed_nodes(settings, workloads, pools)
    return pools, workloads


def _keep_max(
    floors: dict[str, tuple[int, str]], name: str, value: int, override: OverrideSettings
) -> None:
    previous = floors.get(name)
    if previous is None or value > previous[0]:
        floors[name] = (value, override.name)


def _add_placed_nodes(
    settings: Settings,
    workloads: Mapping[str, tuple[int, str]],
    pools: dict[str, tuple[int, str]],
) -> None:
    fleet = Fleet(settings.pools, settings.workloads)
    replicas = {w.name: workloads.get(w.name, (0, ""))[0] for w in settings.workloads}
    placement = fleet.place(replicas)
    for pool in settings.pools:
        if pool.kind == "static":
            continue
        on_pool = [w for w in fleet.workloads_on(pool.name) if w in workloads]
        if not on_pool:
            continue
        needed = int(placement.nodes[pool.name])
        names = ", ".join(sorted({workloads[w][1] for w in on_pool}))
        previous = pools.get(pool.name)
        if previous is None or needed > previous[0]:
            pools[pool.name] = (needed, names)

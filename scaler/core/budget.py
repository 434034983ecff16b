"""GPU-hour budgets: the GPU-hours pool floors held today, and the largest floors the rest allows.

Usage is the floor held, not the nodes that ran: a floor of N nodes of G GPUs held for h hours
counts N x G x h GPU-hours, whatever the reactive autoscalers added above it. Only burst pools
count, because a static pool's size is fixed. A budget day starts at midnight in
``guardrails.budget_timezone``.

A floor is capped so that holding it until the next cycle (``policy.cycle_interval_seconds``)
keeps every budget it falls under: its pool's, its cluster's and the fleet's. When several
pools share a cluster or fleet budget, pools earlier in the configuration get their share
first, as they do in placement.

Usage lives in ``PolicyState``, which the live service keeps in memory. On a cluster, each
change of a burst pool's floor also records the usage on the pool's object, and a restarted
process reads it back (``scaler.kube.budget_usage``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from scaler.settings import Settings
from scaler.settings_guardrails import pool_cluster


@dataclass(frozen=True)
class BudgetUsage:
    """GPU-hours one pool's floor held on budget day ``day``, counted up to ``at``."""

    day: dt.date
    gpu_hours: float
    at: pd.Timestamp


@dataclass(frozen=True)
class BudgetCap:
    """The largest node floor a budget allows one pool for the next cycle, and why."""

    nodes: int
    scope: str  # "pool <name>", "cluster <name>" or "fleet"
    limit_gpu_hours: float
    used_gpu_hours: float


def budget_day_start(now: pd.Timestamp, settings: Settings) -> pd.Timestamp:
    """Return the start of the budget day that contains ``now``, in UTC."""
    local = now.tz_convert(settings.guardrails.budget_timezone)
    return local.normalize().tz_convert("UTC")


def account(
    usage: BudgetUsage | None, held_gpus: int | None, now: pd.Timestamp, settings: Settings
) -> BudgetUsage:
    """Add the GPU-hours of ``held_gpus`` held since ``usage.at``; a new day starts from zero.

    ``held_gpus`` is the floor read at this cycle, so it is what was held since the last one.
    An unknown floor (None) adds nothing.
    """
    day_start = budget_day_start(now, settings)
    today = day_start.tz_convert(settings.guardrails.budget_timezone).date()
    if usage is None:
        return BudgetUsage(today, 0.0, now)
    used = usage.gpu_hours if usage.day == today else 0.0
    since = usage.at if usage.day == today else max(usage.at, day_start)
    if held_gpus is None or now <= since:
        return BudgetUsage(today, used, now)
    hours = (now - since).total_seconds() / 3600
    return BudgetUsage(today, used + held_gpus * hours, now)


def budget_caps(
    desired: Mapping[str, int],
    lowest: Mapping[str, int],
    usage: Mapping[str, BudgetUsage],
    settings: Settings,
) -> dict[str, BudgetCap]:
    """Return, for each burst pool a budget caps below ``desired``, the cap.

    ``lowest`` is the floor no budget goes below: min_nodes, or an override in force. Such a
    floor still spends its share of a shared budget.
    """
    caps: dict[str, BudgetCap] = {}
    for name in desired:
        cap = _pool_cap(name, desired[name], usage, settings)
        if cap is not None:
            caps[name] = cap
    for scope, limit, members in _shared_budgets(desired, settings):
        _cap_shared(scope, limit, members, desired, lowest, usage, settings, caps)
    return {
        name: cap
        for name, cap in caps.items()
        if max(cap.nodes, lowest.get(name, 0)) < desired[name]
    }


def _interval_hours(settings: Settings) -> float:
    return settings.policy.cycle_interval_seconds / 3600


def _used(usage: Mapping[str, BudgetUsage], pool: str) -> float:
    found = usage.get(pool)
    return found.gpu_hours if found is not None else 0.0


def _pool_cap(
    name: str, desired: int, usage: Mapping[str, BudgetUsage], settings: Settings
) -> BudgetCap | None:
    limit = settings.guardrails.pool_limits(name).max_gpu_hours_per_day
    if limit is None:
        return None
    used = _used(usage, name)
    nodes = _affordable_nodes(limit - used, settings.pool(name).gpus_per_node, settings)
    if nodes >= desired:
        return None
    return BudgetCap(nodes, f"pool {name}", limit, used)


def _affordable_nodes(remaining_gpu_hours: float, gpus_per_node: int, settings: Settings) -> int:
    rate = max(0.0, remaining_gpu_hours) / _interval_hours(settings)
    return math.floor(round(rate / gpus_per_node, 9))


def _shared_budgets(
    desired: Mapping[str, int], settings: Settings
) -> list[tuple[str, float, list[str]]]:
    """Return (scope, limit, member pools in configuration order) of each shared budget."""
    pools = [pool.name for pool in settings.pools if pool.name in desired]
    budgets: list[tuple[str, float, list[str]]] = []
    for cluster in settings.clusters:
        members = [name for name in pools if pool_cluster(settings, name) == cluster.name]
        if cluster.max_gpu_hours_per_day is not None and members:
            budgets.append((f"cluster {cluster.name}", cluster.max_gpu_hours_per_day, members))
    if settings.guardrails.max_gpu_hours_per_day is not None and pools:
        budgets.append(("fleet", settings.guardrails.max_gpu_hours_per_day, pools))
    return budgets


def _cap_shared(
    scope: str,
    limit: float,
    members: list[str],
    desired: Mapping[str, int],
    lowest: Mapping[str, int],
    usage: Mapping[str, BudgetUsage],
    settings: Settings,
    caps: dict[str, BudgetCap],
) -> None:
    used = sum(_used(usage, name) for name in members)
    remaining = limit - used
    for name in members:
        gpus_per_node = settings.pool(name).gpus_per_node
        requested = min(desired[name], caps[name].nodes) if name in caps else desired[name]
        affordable = _affordable_nodes(remaining, gpus_per_node, settings)
        spent = max(min(requested, affordable), lowest.get(name, 0))
        if affordable < requested:
            caps[name] = BudgetCap(affordable, scope, limit, used)
        remaining -= spent * gpus_per_node * _interval_hours(settings)

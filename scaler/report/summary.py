"""The plain-English summary at the top of a report, including where peakcast does worse."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecaster.forecast import Forecast
from scaler.backtest.metrics import RunMetrics
from scaler.core.decision import DataStatus
from scaler.report.model import (
    BacktestSection,
    CapacityPlan,
    FloorRuleCounts,
    TargetCheck,
    WorkloadMisses,
)
from scaler.settings import Settings

ORACLE = "oracle"
# Above this share of a peakcast policy's floor decisions set by missing_data_hold or
# safe_floor, the summary states that unusable data, not the forecast, set those floors.
UNUSABLE_DATA_SHARE_LIMIT = 0.05


def backtest_summary(section: BacktestSection, plan: CapacityPlan | None) -> tuple[str, ...]:
    """Return the summary sentences of a backtest report."""
    sentences = [
        f"The backtest replayed {section.days:.1f} days from {section.start:%Y-%m-%d %H:%M} UTC "
        f"through {len(section.policies)} policies: {', '.join(section.policies)}."
    ]
    if not section.targets:
        sentences.append("No peakcast policy was run, so there is no target check.")
    for check in section.targets:
        sentences.append(_target_sentence(section.policies, check))
        sentences.extend(_losses(section, check.policy))
    sentences.extend(_unusable_data_sentences(section.floor_rules or ()))
    for workload in section.misses or ():
        sentences.append(_misses_sentence(workload))
    if plan is not None:
        sentences.append(
            f"Capacity plan from the last forecast of the replay, covering {_span_text(plan)} "
            f"from {plan.start:%Y-%m-%d %H:%M}: {_reserve_sentence(plan)}"
        )
    return tuple(sentences)


def _unusable_data_sentences(policies: tuple[FloorRuleCounts, ...]) -> list[str]:
    """Return a sentence per group of policies held on unusable data above the share limit.

    A group is the policies with equal rule counts. The peakcast policies share one planner, so
    they usually form one group.
    """
    groups: dict[tuple[tuple[str, int], ...], list[FloorRuleCounts]] = {}
    for counts in policies:
        share = counts.unusable_data_share
        if share is not None and share > UNUSABLE_DATA_SHARE_LIMIT:
            groups.setdefault(tuple(sorted(counts.counts.items())), []).append(counts)
    sentences = []
    for group in groups.values():
        first = group[0]
        names = [counts.policy for counts in group]
        listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        sentences.append(
            f"{listed}: {first.unusable_data_share:.1%} of the floor decisions "
            f"({first.unusable_data_count:,} of {first.decisions:,}) were missing_data_hold or "
            "safe_floor, so the floors were held because the data was unusable then (coverage "
            "below forecast.min_coverage or forecast.min_history_coverage, or stale or missing "
            "samples) or no forecast was available. Shortfall in those cycles is not a forecast "
            "error."
        )
    return sentences


def _misses_sentence(workload: WorkloadMisses) -> str:
    level = f"P{workload.upper_level * 100:g}"
    run = f"{workload.miss_after_seconds // 60} min"
    total = f"{workload.minutes_above:,} minutes"
    if not workload.count:
        return (
            f"{workload.workload}: no forecast miss. Demand was above the {level} forecast for "
            f"{total} in total, never for {run} in a row."
        )
    return (
        f"{workload.workload}: {workload.count} forecast misses (demand above the {level} "
        f"forecast for {run} in a row), the first at {workload.first_at:%Y-%m-%d %H:%M}. Demand "
        f"was above that quantile for {total} in total."
    )


def _span_text(plan: CapacityPlan) -> str:
    days = (plan.end - plan.start).total_seconds() / 86_400
    return "1 day" if days == 1 else f"{days:g} days"


def forecast_summary(
    settings: Settings,
    forecasts: Mapping[str, Forecast],
    plan: CapacityPlan,
    *,
    data: Sequence[DataStatus] = (),
    at: pd.Timestamp | None = None,
) -> tuple[str, ...]:
    """Return the summary sentences of a capacity-planning report.

    ``data`` contains each workload's data status at ``at``, the time the report is made at.
    Each unusable one gets a sentence right after the first.
    """
    level = plan.planning_level
    sentences = [
        f"The plan covers {_span_text(plan)} from {plan.start:%Y-%m-%d %H:%M} UTC at the "
        f"P{level * 100:g} forecast."
    ]
    for status in data:
        if not status.usable:
            when = "" if at is None else f" at {at:%Y-%m-%d %H:%M} UTC"
            sentences.append(
                f"The data of {status.workload} is unusable{when} ({status.reason}), so a live "
                "cycle would hold its floors then (rule missing_data_hold, later safe_floor) "
                "instead of following this forecast."
            )
    for workload in settings.workloads:
        forecast = forecasts[workload.name]
        values = forecast.quantiles[level]
        top = int(np.argmax(values))
        sentences.append(
            f"The P{level * 100:g} forecast of {workload.name} ({forecast.model}) peaks at "
            f"{values[top]:,.1f} {workload.demand.unit} at {forecast.index[top]:%Y-%m-%d %H:%M}."
        )
    sentences.append(_windows_sentence(plan))
    reserve = _reserve_sentence(plan)
    sentences.append(reserve[0].upper() + reserve[1:])
    sentences.append(
        f"Holding the P{level * 100:g} requirement within the configured bounds costs "
        f"{plan.cost_per_day:,.0f} per day and {plan.cost_per_month:,.0f} per 30-day month at the "
        "configured prices. This is a lower bound: it leaves out the lead time before each "
        "rise and the scale-down delay after it."
    )
    sentences.extend(plan.notes)
    return tuple(sentences)


def _target_sentence(policies: Mapping[str, RunMetrics], check: TargetCheck) -> str:
    metrics = policies[check.policy]
    short = (
        f"{check.policy} was short of capacity for {metrics.shortfall_gpu_minutes:,.0f} GPU-minutes"
    )
    if check.shortfall_share is not None and math.isinf(check.shortfall_share):
        short += " while reactive was never short,"
    elif check.shortfall_share is not None:
        short += f", {check.shortfall_share:.0%} of reactive's,"
    billed = f"billed {metrics.gpu_hours:,.0f} GPU-hours"
    if check.gpu_hours_ratio is not None:
        billed += f", {check.gpu_hours_ratio:.2f}× the oracle's"
    sentence = f"{short} and {billed}."
    target = (
        f"the target of at most {check.max_shortfall_share:.0%} of reactive's under-provisioned "
        f"GPU-minutes at no more than {check.max_gpu_hours_ratio:.2f}× the oracle's GPU-hours"
    )
    if check.met is None:
        return f"{sentence} Without the reactive and oracle runs {target} cannot be checked."
    if check.met:
        return f"{sentence} It meets {target}."
    missed = []
    if not check.shortfall_met:
        missed.append("under-provisioning")
    if not check.gpu_hours_met:
        missed.append("GPU-hours")
    return f"{sentence} It misses {target}, on {' and '.join(missed)}."


def _losses(section: BacktestSection, name: str) -> list[str]:
    """Return sentences on where other policies do better than the peakcast policy ``name``."""
    mine = section.policies[name]
    others = {
        other: metrics for other, metrics in section.policies.items() if other not in (name, ORACLE)
    }
    sentences = []
    fewer = [o for o, m in others.items() if m.shortfall_gpu_minutes < mine.shortfall_gpu_minutes]
    if fewer:
        listed = ", ".join(f"{o} ({others[o].shortfall_gpu_minutes:,.0f})" for o in fewer)
        sentences.append(f"Fewer under-provisioned GPU-minutes than {name}: {listed}.")
    cheaper = [o for o, m in others.items() if m.cost < mine.cost]
    if cheaper:
        listed = ", ".join(f"{o} ({others[o].cost:,.0f})" for o in cheaper)
        sentences.append(f"Cheaper than {name} ({mine.cost:,.0f}): {listed}.")
    calmer = [o for o, m in others.items() if m.scale_actions < mine.scale_actions]
    if calmer:
        listed = ", ".join(f"{o} ({others[o].scale_actions:,})" for o in calmer)
        sentences.append(f"Fewer scale actions than {name} ({mine.scale_actions:,}): {listed}.")
    sentences.extend(_window_losses(section, name, mine))
    return sentences


def _window_losses(section: BacktestSection, name: str, mine: RunMetrics) -> list[str]:
    if not section.windows:
        return []
    short = [value for value in mine.window_shortfall_gpu_minutes if value > 0]
    inside = sum(mine.window_shortfall_gpu_minutes)
    sentences = []
    if short:
        worst = int(np.argmax(mine.window_shortfall_gpu_minutes))
        window = section.windows[worst]
        sentences.append(
            f"{name} was short in {len(short)} of {len(section.windows)} peak windows. The worst "
            f"began {window.start:%Y-%m-%d %H:%M} and lost "
            f"{mine.window_shortfall_gpu_minutes[worst]:,.0f} GPU-minutes."
        )
    else:
        sentences.append(f"{name} was never short inside the {len(section.windows)} peak windows.")
    outside = mine.shortfall_gpu_minutes - inside
    if outside > 0.5:
        sentences.append(
            f"{outside:,.0f} of {name}'s {mine.shortfall_gpu_minutes:,.0f} under-provisioned "
            "GPU-minutes fell outside the peak windows."
        )
    return sentences


def _windows_sentence(plan: CapacityPlan) -> str:
    base = sum(pool.base_nodes * pool.gpus_per_node for pool in plan.pools)
    if not plan.windows:
        return (
            f"Demand stays within the base capacity of {base} GPUs (static pools plus the burst "
            "nodes needed at every step) over the whole horizon."
        )
    largest = max(plan.windows, key=lambda window: sum(window.gpus.values()))
    nodes = " and ".join(
        f"{count} nodes of {pool}" for pool, count in largest.nodes.items() if count
    )
    return (
        f"{len(plan.windows)} peak windows rise above the base capacity of {base} GPUs (static "
        f"pools plus the burst nodes needed at every step). The largest, from "
        f"{largest.start:%Y-%m-%d %H:%M} to {largest.end:%Y-%m-%d %H:%M}, needs "
        f"{sum(largest.gpus.values())} GPUs on {nodes}."
    )


def _reserve_sentence(plan: CapacityPlan) -> str:
    reserved = plan.reserved
    burst = ", ".join(
        f"{pool.reserved_nodes} nodes of {pool.name}"
        for pool in plan.pools
        if pool.kind == "burst" and pool.reserved_nodes
    )
    burst_part = f" + {reserved.burst_gpus} burst ({burst})" if burst else " and no burst"
    days = len(reserved.daily_peak_gpus)
    peaks = "the one daily peak" if days == 1 else f"the {days} daily peaks"
    return (
        f"reserving {reserved.total_gpus} GPUs, {reserved.static_gpus} static base{burst_part}, "
        f"covers the {reserved.quantile:.0%} quantile of {peaks} of the "
        f"P{plan.planning_level * 100:g} forecast."
    )

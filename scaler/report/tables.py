"""The report's tables as formatted text cells, shared by the HTML and Markdown renderers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

from forecaster.timegrid import format_span
from scaler.core.decision import RULE_FORECAST, RULE_STATIC
from scaler.report.model import (
    FLOOR_RULES,
    UNUSABLE_DATA_RULES,
    BacktestSection,
    CapacityPlan,
    Report,
    TargetCheck,
    WorkloadMisses,
)

# The backtest's peak-window table lists at most this many windows. JSON has them all.
MAX_WINDOW_ROWS = 24
# The list of forecast misses shows at most this many, the earliest first. JSON has them all.
MAX_MISS_ROWS = 20


@dataclass(frozen=True)
class Table:
    """A table of formatted cells. ``numeric`` marks the columns aligned to the right.

    ``empty`` is the sentence shown in place of a table without rows.
    """

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    note: str = ""
    empty: str = "None."


@dataclass(frozen=True)
class Section:
    """A heading and the tables under it."""

    title: str
    tables: tuple[Table, ...]


def report_sections(report: Report) -> list[Section]:
    """Return the report's tables grouped by section, in reading order."""
    zone = ZoneInfo(report.timezone)
    sections = []
    if report.backtest is not None:
        sections.append(
            Section(
                "Backtest",
                (
                    policy_table(report.backtest),
                    target_table(report.backtest.targets),
                    floor_rule_table(report.backtest),
                    backtest_window_table(report.backtest, zone),
                    pool_cost_table(report.backtest),
                ),
            )
        )
        sections.append(Section("Forecast misses", miss_tables(report.backtest, zone)))
    if report.plan is not None:
        sections.append(
            Section(
                "Capacity plan",
                (
                    pool_plan_table(report.plan),
                    reserve_table(report.plan),
                    plan_window_table(report.plan, zone),
                ),
            )
        )
    sections.append(
        Section(
            "Configuration",
            (pool_table(report), workload_table(report), lead_time_table(report)),
        )
    )
    return sections


def gpu_minutes(value: float) -> str:
    return f"{value:,.0f}"


def share(value: float | None) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.2%}"


def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def money(value: float) -> str:
    return f"{value:,.0f}"


def clock(stamp: pd.Timestamp, zone: ZoneInfo) -> str:
    return f"{stamp.tz_convert(zone):%Y-%m-%d %H:%M}"


def policy_table(section: BacktestSection) -> Table:
    """Return the comparison of every policy's totals."""
    reactive = section.policies.get("reactive")
    oracle = section.policies.get("oracle")
    rows = []
    for name, metrics in section.policies.items():
        versus_reactive = None
        if reactive is not None and reactive.shortfall_gpu_minutes > 0:
            versus_reactive = metrics.shortfall_gpu_minutes / reactive.shortfall_gpu_minutes
        versus_oracle = None
        if oracle is not None and oracle.gpu_hours > 0:
            versus_oracle = metrics.gpu_hours / oracle.gpu_hours
        rows.append(
            (
                name,
                gpu_minutes(metrics.shortfall_gpu_minutes),
                share(versus_reactive),
                share(metrics.unserved_share),
                share(metrics.slo_attainment),
                f"{metrics.gpu_hours:,.1f}",
                ratio(versus_oracle),
                money(metrics.cost),
                f"{metrics.scale_actions:,}",
                gpu_minutes(sum(metrics.window_shortfall_gpu_minutes)),
                f"{metrics.wall_seconds:.2f}",
            )
        )
    return Table(
        title="Policies compared",
        headers=(
            "policy",
            "under-provisioned GPU-min",
            "vs reactive",
            "unserved demand",
            "SLO attainment",
            "GPU-hours",
            "vs oracle",
            "cost",
            "scale actions",
            "in peak windows GPU-min",
            "wall s",
        ),
        rows=tuple(rows),
        numeric=(False, *([True] * 10)),
        note=(
            "Under-provisioned GPU-minutes: GPUs the demand needs at the SLO minus GPUs serving, "
            "summed over minutes. SLO attainment: share of minutes with no shortfall. Cost is "
            "in the currency of price_per_node_hour."
        ),
    )


def target_table(targets: tuple[TargetCheck, ...]) -> Table:
    """Return the target check of each peakcast policy."""
    rows = []
    for check in targets:
        verdict = {None: "not checked", True: "met", False: "missed"}[check.met]
        rows.append(
            (
                check.policy,
                share(check.shortfall_share),
                # Three decimals, so a ratio just over the limit does not print as the limit.
                "–" if check.gpu_hours_ratio is None else f"{check.gpu_hours_ratio:.3f}×",
                verdict,
            )
        )
    limit_share = targets[0].max_shortfall_share if targets else 0.20
    limit_ratio = targets[0].max_gpu_hours_ratio if targets else 1.15
    return Table(
        title="Target check",
        headers=(
            "policy",
            f"under-provisioning vs reactive (≤ {limit_share:.0%})",
            f"GPU-hours vs oracle (≤ {limit_ratio:.2f}×)",
            "result",
        ),
        rows=tuple(rows),
        numeric=(False, True, True, False),
    )


def floor_rule_table(section: BacktestSection) -> Table:
    """Return the share of each peakcast policy's floor decisions that each rule set.

    The forecast and the two data-hold rules always get a column, other rules only when they
    set a floor in some policy. Static pools' fixed floors are left out.
    """
    if section.floor_rules is None:
        return _floor_rule_frame(
            (), (), "No peakcast policy ran, so no floor was decided by peakcast's rules."
        )
    policies = section.floor_rules
    always = (RULE_FORECAST, *UNUSABLE_DATA_RULES)
    unknown = sorted({rule for counts in policies for rule in counts.counts} - set(FLOOR_RULES))
    rules = tuple(
        rule
        for rule in (*FLOOR_RULES, *unknown)
        if rule != RULE_STATIC
        and (rule in always or any(counts.counts.get(rule, 0) for counts in policies))
    )
    rows = tuple(
        (
            counts.policy,
            f"{counts.decisions:,}",
            *(share(counts.share(rule)) for rule in rules),
        )
        for counts in policies
    )
    return _floor_rule_frame(rules, rows)


def _floor_rule_frame(
    rules: tuple[str, ...], rows: tuple[tuple[str, ...], ...], empty: str = "None."
) -> Table:
    return Table(
        title="Floor rules",
        headers=("policy", "floor decisions", *rules),
        rows=rows,
        numeric=(False, *([True] * (1 + len(rules)))),
        note=(
            "Share of each peakcast policy's floor decisions that each rule set, with the rule "
            "names of the decision log. Every policy cycle decides one floor per burst pool and "
            "per workload. Static pools keep their fixed size and are left out. "
            "missing_data_hold and safe_floor mark cycles in which a workload's data was "
            "unusable (coverage below forecast.min_coverage, or stale or missing samples) or "
            "no forecast was available, so the floors were held instead of following a "
            "forecast. The peakcast policies share one planner, so their floor decisions are "
            "the same. The HPA and the fast loop act above these floors and are not counted."
        ),
        empty=empty,
    )


def backtest_window_table(section: BacktestSection, zone: ZoneInfo) -> Table:
    """Return each peak window's under-provisioned GPU-minutes per policy."""
    names = list(section.policies)
    chosen = list(range(len(section.windows)))
    note = "Peak windows: spans where total demand reaches the backtest's peak quantile."
    if len(chosen) > MAX_WINDOW_ROWS:
        worst = sorted(
            chosen,
            key=lambda k: max(m.window_shortfall_gpu_minutes[k] for m in section.policies.values()),
            reverse=True,
        )
        chosen = sorted(worst[:MAX_WINDOW_ROWS])
        note += (
            f" Shown: the {MAX_WINDOW_ROWS} of {len(section.windows)} windows with the largest "
            "shortfall of any policy. The JSON format lists all."
        )
    rows = []
    for k in chosen:
        window = section.windows[k]
        cells = [
            str(k + 1),
            clock(window.start, zone),
            clock(window.end, zone),
            f"{window.peak_demand_gpus:,.1f}",
        ]
        cells += [gpu_minutes(section.policies[n].window_shortfall_gpu_minutes[k]) for n in names]
        rows.append(tuple(cells))
    return Table(
        title="Under-provisioned GPU-minutes per peak window",
        headers=("#", "start", "end", "peak GPUs", *names),
        rows=tuple(rows),
        numeric=(True, False, False, *([True] * (1 + len(names)))),
        note=note,
    )


def miss_tables(section: BacktestSection, zone: ZoneInfo) -> tuple[Table, ...]:
    """Return the forecast misses per workload and the list of misses.

    Without any miss, or when no peakcast policy ran, this is one table without rows whose
    ``empty`` sentence states why.
    """
    if section.misses is None:
        return (
            _miss_summary_table(
                (), "No peakcast policy ran, so no forecast was compared with demand."
            ),
        )
    total = sum(workload.count for workload in section.misses)
    if total == 0:
        levels = sorted({f"P{w.upper_level * 100:g}" for w in section.misses})
        durations = sorted({_minutes(w.miss_after_seconds) for w in section.misses})
        sentence = (
            f"No forecast misses: demand never stayed above the {' or '.join(levels)} forecast "
            f"for {' or '.join(durations)}."
        )
        return (_miss_summary_table((), sentence),)
    rows = []
    for workload in section.misses:
        first = clock(workload.first_at, zone) if workload.first_at is not None else "–"
        last = clock(workload.last_at, zone) if workload.last_at is not None else "–"
        rows.append(
            (
                workload.workload,
                f"P{workload.upper_level * 100:g}",
                _minutes(workload.miss_after_seconds),
                str(workload.count),
                first,
                last,
                f"{workload.minutes_above:,}",
                f"P{workload.widest_level * 100:g}",
            )
        )
    return (_miss_summary_table(tuple(rows)), _miss_list_table(section.misses, total, zone))


def _miss_summary_table(rows: tuple[tuple[str, ...], ...], empty: str = "None.") -> Table:
    return Table(
        title="Forecast misses per workload",
        headers=(
            "workload",
            "upper quantile",
            "miss after",
            "misses",
            "first miss",
            "last miss",
            "minutes above upper quantile",
            "widest planning level",
        ),
        rows=rows,
        numeric=(False, False, True, True, False, False, True, False),
        note=(
            "A miss is recorded when demand stays above the upper quantile of the newest "
            "forecast for the 'miss after' time, as the live fast loop records it. Each miss "
            "widens the planning level by one step, up to the widest configured one. The "
            "misses are found from the forecasts the peakcast policies share, with no early "
            "refit."
        ),
        empty=empty,
    )


def _miss_list_table(workloads: tuple[WorkloadMisses, ...], total: int, zone: ZoneInfo) -> Table:
    units = {workload.workload: workload.unit for workload in workloads}
    every = sorted(
        (miss for workload in workloads for miss in workload.misses),
        key=lambda miss: (miss.at, miss.workload),
    )
    rows = tuple(
        (
            miss.workload,
            clock(miss.above_since, zone),
            clock(miss.at, zone),
            f"{miss.demand:,.4g}",
            f"{miss.upper:,.4g}",
            units[miss.workload],
            f"P{miss.level * 100:g}",
        )
        for miss in every[:MAX_MISS_ROWS]
    )
    note = (
        "Above since: when the timer of the miss started, which after an earlier miss in the "
        "same run above the quantile is that miss. Demand and upper quantile are the values "
        "compared at the minute the miss was recorded."
    )
    if total > MAX_MISS_ROWS:
        note += (
            f" Shown: the first {MAX_MISS_ROWS} of {total} misses; {total - MAX_MISS_ROWS} are "
            "left out. The JSON format lists all."
        )
    return Table(
        title="Forecast misses in time order",
        headers=(
            "workload",
            "above since",
            "recorded at",
            "demand",
            "upper quantile",
            "unit",
            "planning level after",
        ),
        rows=rows,
        numeric=(False, False, False, True, True, False, False),
        note=note,
    )


def _minutes(seconds: int) -> str:
    return f"{seconds / 60:g} min"


def pool_cost_table(section: BacktestSection) -> Table:
    """Return GPU-hours, cost and node actions per policy and pool."""
    rows = []
    for name, metrics in section.policies.items():
        for pool, pool_metrics in metrics.pools.items():
            rows.append(
                (
                    name,
                    pool,
                    f"{pool_metrics.gpu_hours:,.1f}",
                    f"{pool_metrics.node_hours:,.1f}",
                    money(pool_metrics.cost),
                    f"{pool_metrics.node_actions:,}",
                    str(pool_metrics.max_billed_nodes),
                )
            )
    return Table(
        title="Cost per pool",
        headers=(
            "policy",
            "pool",
            "GPU-hours",
            "node-hours",
            "cost",
            "node actions",
            "max billed nodes",
        ),
        rows=tuple(rows),
        numeric=(False, False, True, True, True, True, True),
    )


def pool_plan_table(plan: CapacityPlan) -> Table:
    """Return the recommended bounds, reserve and cost of each pool."""
    high = f"P{plan.high_level * 100:g}"
    rows = []
    for pool in plan.pools:
        rows.append(
            (
                pool.name,
                pool.kind,
                str(pool.gpus_per_node),
                f"{pool.configured_min_nodes}–{pool.configured_max_nodes}",
                str(pool.recommended_min_nodes),
                str(pool.recommended_max_nodes),
                str(pool.reserved_nodes),
                f"{pool.mean_nodes:,.2f}",
                f"{pool.peak_gpus_used} / {pool.mean_gpus_used:,.1f}",
                money(pool.cost_per_day),
                money(pool.cost_per_month),
            )
        )
    rows.append(
        (
            "total",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            money(plan.cost_per_day),
            money(plan.cost_per_month),
        )
    )
    level = f"P{plan.planning_level * 100:g}"
    return Table(
        title="Recommended pool bounds and cost",
        headers=(
            "pool",
            "kind",
            "GPUs/node",
            "configured min–max",
            "recommended min",
            f"recommended max ({high})",
            "reserved nodes",
            "mean nodes held",
            "GPUs used peak / mean",
            "cost per day",
            "cost per 30 days",
        ),
        rows=tuple(rows),
        numeric=(False, False, *([True] * 9)),
        note=(
            f"Recommended min: nodes the {level} forecast needs at every step. Recommended max: "
            f"the most nodes the {high} forecast needs. Reserved: the reserve quantile of the "
            f"daily peak node need. Cost: mean nodes held for the {level} forecast within the "
            "configured bounds × 24 h × price_per_node_hour. Static pools are billed in full."
        ),
    )


def reserve_table(plan: CapacityPlan) -> Table:
    """Return the reserve and the daily peaks it covers."""
    reserved = plan.reserved
    peaks = ", ".join(str(value) for value in reserved.daily_peak_gpus)
    return Table(
        title="Reserved capacity",
        headers=(
            "quantile of daily peaks",
            "daily peak GPUs",
            "static base GPUs",
            "burst GPUs",
            "total GPUs",
        ),
        rows=(
            (
                f"{reserved.quantile:.0%}",
                peaks,
                str(reserved.static_gpus),
                str(reserved.burst_gpus),
                str(reserved.total_gpus),
            ),
        ),
        numeric=(True, False, True, True, True),
        note=(
            f"Daily peaks are the most GPUs held over all pools (whole nodes) on each day of the "
            f"P{plan.planning_level * 100:g} forecast."
        ),
    )


def plan_window_table(plan: CapacityPlan, zone: ZoneInfo) -> Table:
    """Return the forecast's peak windows with GPUs and nodes per pool."""
    pools = [pool.name for pool in plan.pools]
    workloads = list(plan.windows[0].peak_demand) if plan.windows else []
    rows = []
    for number, window in enumerate(plan.windows, start=1):
        cells = [
            str(number),
            clock(window.start, zone),
            clock(window.end, zone),
            format_span(window.duration),
            clock(window.peak_time, zone),
        ]
        cells += [f"{window.peak_demand[name]:,.1f}" for name in workloads]
        cells += [f"{window.gpus[pool]} / {window.nodes[pool]}" for pool in pools]
        rows.append(tuple(cells))
    level = f"P{plan.planning_level * 100:g}"
    return Table(
        title="Peak windows above the base capacity",
        headers=(
            "#",
            "start",
            "end",
            "duration",
            "peak at",
            *[f"{name} {level}" for name in workloads],
            *[f"{pool} GPUs / nodes" for pool in pools],
        ),
        rows=tuple(rows),
        numeric=(True, False, False, True, False, *([True] * (len(workloads) + len(pools)))),
        note=(
            "Base capacity: the static pools plus the burst nodes needed at every step. GPUs "
            "count what the replicas use and nodes the whole nodes they need, both at the "
            "window's maximum."
        ),
    )


def lead_time_table(report: Report) -> Table:
    """Return the lead-time phases of every burst pool, in minutes."""
    rows = tuple(
        (
            lead.pool,
            f"{lead.node_provisioning_seconds / 60:g}",
            f"{lead.workload_start_seconds / 60:g}",
            f"{lead.margin_seconds / 60:g}",
            f"{lead.total_seconds / 60:g}",
            lead.source,
        )
        for lead in report.lead_times
    )
    return Table(
        title="Lead times (minutes)",
        headers=("pool", "node provisioning", "workload start", "margin", "total", "source"),
        rows=rows,
        numeric=(False, True, True, True, True, False),
    )


def workload_table(report: Report) -> Table:
    """Return the capacity model of every workload."""
    rows = tuple(
        (
            workload.name,
            workload.unit,
            f"{workload.throughput_per_replica:g}",
            f"{workload.target_utilization:g}",
            str(workload.gpus_per_replica),
            ", ".join(workload.pools),
        )
        for workload in report.workloads
    )
    return Table(
        title="Workloads",
        headers=(
            "workload",
            "demand unit",
            "throughput per replica",
            "target utilisation",
            "GPUs per replica",
            "pools",
        ),
        rows=rows,
        numeric=(False, False, True, True, True, False),
    )


def pool_table(report: Report) -> Table:
    """Return the configured pools."""
    rows = tuple(
        (
            pool.name,
            pool.kind,
            str(pool.gpus_per_node),
            str(pool.min_nodes),
            str(pool.max_nodes),
            f"{pool.price_per_node_hour:g}",
        )
        for pool in report.pools
    )
    return Table(
        title="Pools",
        headers=("pool", "kind", "GPUs/node", "min nodes", "max nodes", "price per node-hour"),
        rows=rows,
        numeric=(False, False, True, True, True, True),
    )

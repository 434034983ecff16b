"""The report as JSON for automation: every number unrounded, no plots, no per-minute series.

Times are ISO 8601 strings in UTC. NaN and infinity become null. docs/SIMULATOR.md
describes the backtest keys, ``backtest.forecast_misses`` and ``backtest.floor_rules`` among
them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from scaler.backtest.metrics import RunMetrics
from scaler.report.model import (
    BacktestSection,
    CapacityPlan,
    DemandView,
    FloorRuleCounts,
    PoolPlan,
    Report,
    TargetCheck,
    WorkloadMisses,
)

SCHEMA_VERSION = 1


def render_json(report: Report) -> str:
    """Return the report as indented JSON text."""
    return json.dumps(report_dict(report), indent=2, allow_nan=False) + "\n"


def report_dict(report: Report) -> dict[str, Any]:
    """Return the report as JSON-ready Python values."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": report.kind,
        "title": report.title,
        "source": report.source,
        "timezone": report.timezone,
        "start": _time(report.start),
        "end": _time(report.end),
        "summary": list(report.summary),
        "notes": list(report.notes),
        "pools": [vars(pool) for pool in report.pools],
        "workloads": [{**vars(w), "pools": list(w.pools)} for w in report.workloads],
        "lead_times": [
            {**vars(lead), "total_seconds": lead.total_seconds} for lead in report.lead_times
        ],
        "forecasts": [_forecast(view) for view in report.demand if view.forecast is not None],
        "capacity_plan": None if report.plan is None else _plan(report.plan),
        "backtest": None if report.backtest is None else _backtest(report.backtest),
    }


def _time(stamp: pd.Timestamp) -> str:
    return pd.Timestamp(stamp).tz_convert("UTC").isoformat()


def _number(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _forecast(view: DemandView) -> dict[str, Any]:
    frame = view.forecast
    rows = []
    if frame is not None:
        for record in frame.to_dict(orient="records"):
            rows.append(
                {
                    str(key): _time(value) if key == "ds" else _number(value)
                    for key, value in record.items()
                }
            )
    return {
        "workload": view.workload,
        "unit": view.unit,
        "model": view.model,
        "label": view.forecast_label,
        "rows": rows,
    }


def _pool_plan(pool: PoolPlan) -> dict[str, Any]:
    return {
        **vars(pool),
        "base_nodes": pool.base_nodes,
        "node_hours_per_day": pool.node_hours_per_day,
        "cost_per_day": pool.cost_per_day,
        "cost_per_month": pool.cost_per_month,
    }


def _plan(plan: CapacityPlan) -> dict[str, Any]:
    reserved = plan.reserved
    return {
        "cutoff": _time(plan.cutoff),
        "start": _time(plan.start),
        "end": _time(plan.end),
        "step_seconds": int(plan.step.total_seconds()),
        "planning_level": plan.planning_level,
        "high_level": plan.high_level,
        "pools": [_pool_plan(pool) for pool in plan.pools],
        "reserved": {
            "quantile": reserved.quantile,
            "daily_peak_gpus": list(reserved.daily_peak_gpus),
            "static_gpus": reserved.static_gpus,
            "burst_gpus": reserved.burst_gpus,
            "total_gpus": reserved.total_gpus,
        },
        "peak_windows": [
            {
                "start": _time(window.start),
                "end": _time(window.end),
                "peak_time": _time(window.peak_time),
                "peak_demand": {k: _number(v) for k, v in window.peak_demand.items()},
                "gpus": dict(window.gpus),
                "nodes": dict(window.nodes),
            }
            for window in plan.windows
        ],
        "cost_per_day": plan.cost_per_day,
        "cost_per_month": plan.cost_per_month,
        "notes": list(plan.notes),
    }


def _metrics(metrics: RunMetrics) -> dict[str, Any]:
    return {
        **{key: _number(value) for key, value in metrics.row().items()},
        "scale_actions": metrics.scale_actions,
        "missing_minutes": metrics.missing_minutes,
        "peak_window_shortfall_gpu_minutes_each": list(metrics.window_shortfall_gpu_minutes),
        "workloads": _nested(metrics.workloads),
        "pools": _nested(metrics.pools),
    }


def _nested(values: Mapping[str, object]) -> dict[str, Any]:
    return {
        name: {
            key: _number(value) if isinstance(value, float) else value
            for key, value in vars(item).items()
        }
        for name, item in values.items()
    }


def _target(check: TargetCheck) -> dict[str, Any]:
    return {
        "policy": check.policy,
        "shortfall_share_of_reactive": None
        if check.shortfall_share is None
        else _number(check.shortfall_share),
        "gpu_hours_ratio_to_oracle": check.gpu_hours_ratio,
        "max_shortfall_share": check.max_shortfall_share,
        "max_gpu_hours_ratio": check.max_gpu_hours_ratio,
        "shortfall_met": check.shortfall_met,
        "gpu_hours_met": check.gpu_hours_met,
        "met": check.met,
    }


def _backtest(section: BacktestSection) -> dict[str, Any]:
    return {
        "start": _time(section.start),
        "end": _time(section.end),
        "minutes": section.minutes,
        "wall_seconds": section.wall_seconds,
        "policies": {name: _metrics(m) for name, m in section.policies.items()},
        "peak_windows": [
            {
                "start": _time(window.start),
                "end": _time(window.end),
                "peak_demand_gpus": window.peak_demand_gpus,
            }
            for window in section.windows
        ],
        "targets": [_target(check) for check in section.targets],
        "forecast_misses": None
        if section.misses is None
        else [_workload_misses(workload) for workload in section.misses],
        "floor_rules": None
        if section.floor_rules is None
        else [_floor_rules(counts) for counts in section.floor_rules],
    }


def _floor_rules(counts: FloorRuleCounts) -> dict[str, Any]:
    return {
        "policy": counts.policy,
        "counts": counts.ordered_counts(),
        "decisions": counts.decisions,
        "unusable_data_share": counts.unusable_data_share,
    }


def _workload_misses(workload: WorkloadMisses) -> dict[str, Any]:
    return {
        "workload": workload.workload,
        "unit": workload.unit,
        "upper_level": workload.upper_level,
        "planning_level": workload.planning_level,
        "miss_after_seconds": workload.miss_after_seconds,
        "count": workload.count,
        "first_at": None if workload.first_at is None else _time(workload.first_at),
        "last_at": None if workload.last_at is None else _time(workload.last_at),
        "minutes_above_upper": workload.minutes_above,
        "widest_level": workload.widest_level,
        "misses": [
            {
                "above_since": _time(miss.above_since),
                "at": _time(miss.at),
                "level": miss.level,
                "demand": _number(miss.demand),
                "upper": _number(miss.upper),
            }
            for miss in workload.misses
        ],
    }

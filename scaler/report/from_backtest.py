"""Fill the report model from a ``BacktestResult``.

The demand plot shows each workload's demand in GPUs with the forecast peakcast used: for every
model step, the newest forecast made before it, so the band is what the policy planned with.
Forecast misses are marked on it. The capacity plan is built from the last forecast of the
replay.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecaster.columns import DS, YHAT
from forecaster.forecast import Forecast
from scaler.backtest.metrics import RunMetrics, total_demand_gpus
from scaler.backtest.misses import compared_level, miss_rule
from scaler.backtest.runner import BacktestResult
from scaler.core.capacity import demand_in_gpus
from scaler.core.phases import lead_times_are_nominal, pool_phase, workload_phase
from scaler.report.capacity_plan import plan_capacity
from scaler.report.model import (
    BacktestSection,
    BacktestWindow,
    CapacityTrace,
    DemandView,
    FloorRuleCounts,
    Report,
    TargetCheck,
    WorkloadMisses,
)
from scaler.report.settings_view import lead_times, pool_infos, workload_infos
from scaler.report.summary import backtest_summary
from scaler.settings import Settings
from scaler.settings_simulator import FixedDuration

logger = logging.getLogger(__name__)

REACTIVE = "reactive"
ORACLE = "oracle"
PEAKCAST_PREFIX = "peakcast"


def backtest_report(
    settings: Settings,
    result: BacktestResult,
    *,
    source: str,
    wall_seconds: float | None = None,
    reserve_quantile: float = 0.9,
) -> Report:
    """Build the report of one backtest. ``source`` names the config it ran with."""
    section = backtest_section(settings, result, wall_seconds)
    plan = None
    if result.forecasts:
        plan = plan_capacity(settings, result.forecasts[-1], reserve_quantile=reserve_quantile)
    spans = tuple((window.start, window.end) for window in section.windows)
    demand = tuple(
        _demand_view(settings, result, workload.name, spans) for workload in settings.workloads
    )
    notes = [
        "Demand in GPUs is the GPUs that serve it at the SLO: demand / throughput_per_replica × "
        "gpus_per_replica.",
        provisioning_note(settings),
    ]
    if plan is not None:
        notes.append(
            f"The capacity plan uses the last forecast of the replay, made at "
            f"{plan.cutoff:%Y-%m-%d %H:%M} UTC."
        )
    return Report(
        kind="backtest",
        title="peakcast backtest",
        source=source,
        timezone=settings.timezone,
        start=section.start,
        end=section.end,
        pools=pool_infos(settings),
        workloads=workload_infos(settings),
        lead_times=lead_times(settings),
        demand=demand,
        summary=backtest_summary(section, plan),
        plan=plan,
        backtest=section,
        notes=tuple(notes),
    )


def provisioning_note(settings: Settings) -> str:
    """Say whether this run's lead times are the configured constants or drawn at random."""
    if lead_times_are_nominal(settings):
        return (
            "This run uses the configured node_provisioning_seconds and workload_start_seconds "
            "as constant lead times, with no failed GPU initialisations and no stockouts: the "
            "config sets no lead-time distribution, failure or stockout probability under "
            "'simulator'."
        )

    burst = [pool_phase(settings, pool) for pool in settings.pools if pool.kind == "burst"]
    phases = burst + [workload_phase(settings, workload) for workload in settings.workloads]
    simulator = settings.simulator
    overridden = any(p.node_boot_seconds or p.gpu_init_seconds for p in simulator.pools.values())
    overridden = overridden or any(
        w.image_pull_seconds or w.model_load_seconds for w in simulator.workloads.values()
    )

    parts = []
    if any(not isinstance(p.first, FixedDuration) for p in phases) or any(
        not isinstance(p.second, FixedDuration) for p in phases
    ):
        parts.append("draws lead times from the configured distributions")
    elif overridden:
        parts.append("uses the fixed lead times set under 'simulator'")
    else:
        parts.append("uses the configured lead times as constants")

    if any(phase.failure_probability > 0 for phase in burst):
        parts.append("fails GPU initialisations at random")
    if any(phase.stockout_probability > 0 for phase in burst):
        parts.append("blocks burst pools with random stockouts")

    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return f"This run {listed} (simulator.seed {settings.simulator.seed})."


def backtest_section(
    settings: Settings, result: BacktestResult, wall_seconds: float | None = None
) -> BacktestSection:
    """Collect the metrics, peak windows, target checks and per-minute GPUs of a backtest."""
    policies = {name: run.metrics for name, run in result.runs.items()}
    windows = tuple(
        BacktestWindow(start=w.start, end=w.end, peak_demand_gpus=w.peak_demand_gpus)
        for w in result.peak_windows
    )
    return BacktestSection(
        start=result.start,
        minutes=result.minutes,
        policies=policies,
        windows=windows,
        targets=target_checks(policies),
        capacity=capacity_trace(settings, result),
        wall_seconds=wall_seconds,
        misses=workload_misses(settings, result),
        floor_rules=floor_rule_counts(result),
    )


def floor_rule_counts(result: BacktestResult) -> tuple[FloorRuleCounts, ...] | None:
    """Collect each peakcast policy's floor rule counts, or return None when none ran."""
    names = [name for name in result.runs if name.startswith(PEAKCAST_PREFIX)]
    if not names:
        return None
    return tuple(FloorRuleCounts(name, dict(result.runs[name].rule_counts)) for name in names)


def workload_misses(
    settings: Settings, result: BacktestResult
) -> tuple[WorkloadMisses, ...] | None:
    """Collect each workload's forecast misses, or return None when no peakcast policy ran."""
    if not any(name.startswith(PEAKCAST_PREFIX) for name in result.runs):
        return None
    collected = []
    for workload in settings.workloads:
        name = workload.name
        last = result.forecasts[-1][name] if result.forecasts else None
        collected.append(
            WorkloadMisses(
                workload=name,
                unit=workload.demand.unit,
                upper_level=compared_level(settings, name, last),
                planning_level=settings.forecast.planning_level,
                miss_after_seconds=miss_rule(settings, name).miss_after_seconds,
                minutes_above=result.minutes_above_upper.get(name, 0),
                misses=tuple(result.misses.get(name, ())),
            )
        )
    return tuple(collected)


def target_checks(policies: Mapping[str, RunMetrics]) -> tuple[TargetCheck, ...]:
    """Check every peakcast policy against reactive's shortfall and the oracle's GPU-hours."""
    reactive = policies.get(REACTIVE)
    oracle = policies.get(ORACLE)
    checks = []
    for name, metrics in policies.items():
        if not name.startswith(PEAKCAST_PREFIX):
            continue
        share = None
        if reactive is not None:
            share = _share(metrics.shortfall_gpu_minutes, reactive.shortfall_gpu_minutes)
        ratio = None
        if oracle is not None and oracle.gpu_hours > 0:
            ratio = metrics.gpu_hours / oracle.gpu_hours
        checks.append(TargetCheck(policy=name, shortfall_share=share, gpu_hours_ratio=ratio))
    return tuple(checks)


def _share(value: float, baseline: float) -> float:
    """Return ``value / baseline``. A zero baseline gives 0 for a zero value, else infinity."""
    if baseline > 0:
        return value / baseline
    return 0.0 if value <= 0 else math.inf


def capacity_trace(settings: Settings, result: BacktestResult) -> CapacityTrace:
    """Sum each policy's serving and billed GPUs over workloads and pools, per minute."""
    gpus_per_node = {pool.name: pool.gpus_per_node for pool in settings.pools}
    serving = {}
    billed = {}
    for name, run in result.runs.items():
        serving[name] = np.sum(list(run.series.serving_gpus.values()), axis=0).astype(np.int32)
        billed[name] = np.sum(
            [nodes * gpus_per_node[pool] for pool, nodes in run.series.billed_nodes.items()],
            axis=0,
        ).astype(np.int32)
    return CapacityTrace(
        start=result.start,
        needed_gpus=total_demand_gpus(result.demand_gpus).astype(np.float32),
        serving_gpus=serving,
        billed_gpus=billed,
    )


def stitch_forecasts(forecasts: Sequence[Forecast]) -> pd.DataFrame | None:
    """Join forecasts made in turn into one frame: each step from the newest forecast before it.

    Rows of a forecast are kept up to the first step of the next one. Steps no forecast covers
    are left out. Returns None when ``forecasts`` is empty.
    """
    if not forecasts:
        return None
    parts = []
    for number, forecast in enumerate(forecasts):
        frame = forecast.frame()
        if number + 1 < len(forecasts):
            following = forecasts[number + 1].cutoff + forecasts[number + 1].step
            frame = frame[frame[DS] < following]
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _demand_view(
    settings: Settings,
    result: BacktestResult,
    workload: str,
    spans: tuple[tuple[pd.Timestamp, pd.Timestamp], ...],
) -> DemandView:
    capacity = settings.workload(workload).capacity
    history = pd.Series(result.demand_gpus[workload].astype(float), index=result.index)
    stitched = stitch_forecasts([replan[workload] for replan in result.forecasts])
    model = result.forecasts[-1][workload].model if result.forecasts else "no"
    if stitched is not None:
        for column in stitched.columns:
            if column == YHAT or str(column).startswith("q"):
                stitched[column] = demand_in_gpus(stitched[column].to_numpy(), capacity)
        # Only the simulated span: the first forecast may reach back into the warm-up.
        stitched = stitched[stitched[DS] < result.index[-1] + pd.Timedelta(minutes=1)]
    interval = settings.backtest.replan_interval_seconds // 60
    misses = result.misses.get(workload, ())
    demand_at_miss = demand_in_gpus([miss.demand for miss in misses], capacity)
    return DemandView(
        workload=workload,
        unit="GPUs",
        history=history,
        forecast=stitched,
        forecast_label=f"forecast re-made every {interval} min" if stitched is not None else "",
        model=model,
        spans=spans,
        misses=tuple(
            (miss.at, float(gpus)) for miss, gpus in zip(misses, demand_at_miss, strict=True)
        ),
    )

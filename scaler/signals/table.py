"""Live signals as rich tables: a fast cycle for ``plan``, the config for ``validate-config``."""

from __future__ import annotations

import math

from rich.markup import escape
from rich.table import Table

from scaler.settings import Settings
from scaler.signals.outcome import FastCycleOutcome, SignalReport
from scaler.signals.settings import HysteresisSettings


def signal_table(outcome: FastCycleOutcome) -> Table:
    """Return one row per signal: value against threshold, run, status, floor requested."""
    table = Table(title=f"live signals at {outcome.at.isoformat()}", title_justify="left")
    for column in ("signal", "value", "threshold", "over for", "status", "floor", "note"):
        table.add_column(column, overflow="fold")
    for report in outcome.reports:
        table.add_row(
            escape(report.key.label),
            _number(report.value, report.unit),
            _number(report.threshold, ""),
            f"{report.run_seconds:.0f} s ({report.run_samples} samples)",
            _status(report),
            "-" if report.floor is None else str(report.floor),
            escape(report.message),
        )
    if outcome.error:
        table.caption = f"nothing raised: {escape(outcome.error)}"
    return table


def _number(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    return escape(f"{value:.4g} {unit}".strip())


def _status(report: SignalReport) -> str:
    if report.status == "unreadable":
        return "[red]unreadable[/]"
    if report.status == "raised":
        return "[bold]raised[/]"
    return report.status


def configured_signal_table(settings: Settings) -> Table | None:
    """Tabulate the configured signals for ``validate-config``, or return None without any."""
    rows: list[tuple[str, str, str, HysteresisSettings, str]] = []
    for pool in settings.pools:
        pool_signals = pool.signals
        if pool_signals is None:
            continue
        note = "" if pool.actuator is not None else "not read: the pool has no actuator"
        if pool_signals.pending_gpu_pods is not None:
            pending = pool_signals.pending_gpu_pods
            fires = f"at least {pending.min_pending_gpus} pending {pending.resource}"
            rows.append((f"pool {pool.name}", "pending_gpu_pods", fires, pending.hysteresis, note))
        if pool_signals.gpu_allocation is not None:
            allocation = pool_signals.gpu_allocation
            fires = f"requested / allocatable above {allocation.max_requested_ratio:g}"
            rows.append((f"pool {pool.name}", "gpu_allocation", fires, allocation.hysteresis, note))
    for workload in settings.workloads:
        workload_signals = workload.signals
        if workload_signals is None:
            continue
        target = f"workload {workload.name}"
        for saturation in workload_signals.saturation:
            fires = f"{saturation.metric} above {saturation.threshold:g} per replica"
            rows.append((target, "saturation", fires, saturation.hysteresis, ""))
        demand = workload_signals.demand_above_forecast
        if demand is not None:
            level = demand.level or max(settings.forecast.levels)
            misses = demand.misses
            fires = (
                f"demand above P{level * 100:g}; a miss after {misses.miss_after_seconds} s "
                "widens the planning level"
            )
            rows.append((target, "demand_above_forecast", fires, demand.hysteresis, ""))
    if not rows:
        return None
    interval = settings.fast_loop.interval_seconds
    table = Table(title=f"live signals (read every {interval} s)", title_justify="left")
    for column in ("raises", "signal", "fires when", "hysteresis", "note"):
        table.add_column(column, overflow="fold")
    for target, name, fires, hysteresis, note in rows:
        table.add_row(
            escape(target),
            name,
            escape(fires),
            f"{hysteresis.hold_seconds} s, {hysteresis.min_samples} samples",
            note,
        )
    return table

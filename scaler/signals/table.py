"""The live signals of one fast cycle as a rich table, for ``peakcast plan``."""

from __future__ import annotations

import math

from rich.markup import escape
from rich.table import Table

from scaler.signals.outcome import FastCycleOutcome, SignalReport


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

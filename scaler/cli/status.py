"""``peakcast status``: the floors in the cluster, why they were set, when they expire, and the
pauses and overrides in force."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from forecaster.errors import ConfigError
from scaler.cli.common import (
    ConfigOption,
    LogFormatOption,
    VerboseOption,
    console,
    parse_timestamp,
    reports_errors,
    setup,
)
from scaler.cli.kube_options import ContextOption, KubeconfigOption, with_kubeconfig
from scaler.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from scaler.kube.inventory import FloorObject


@reports_errors
def status(
    at: str | None = typer.Option(
        None,
        "--at",
        help="Judge expiry and overrides as of this time (ISO 8601; without an offset it is "
        "read in the config's timezone). Default: now.",
    ),
    output: str = typer.Option("table", "--output", "-o", help="Output format: table or json."),
    kubeconfig: Path | None = KubeconfigOption,
    context: str | None = ContextOption,
    config: Path | None = ConfigOption,
    verbose: int = VerboseOption,
    log_format: str = LogFormatOption,
) -> None:
    """Show each floor peakcast writes, with its reason and expiry, and the operator controls.

    Reads the cluster (or each cluster under 'clusters') and writes nothing.
    """
    from scaler.cli.timing import wall_clock_now
    from scaler.kube.clusters import build_cluster_clients
    from scaler.kube.inventory import read_floor_objects

    if output not in ("table", "json"):
        raise ConfigError("--output", output, "table or json")
    settings = with_kubeconfig(setup(config, verbose, log_format), kubeconfig, context)
    now = parse_timestamp(at, settings.timezone) if at else wall_clock_now()
    objects = read_floor_objects(build_cluster_clients(settings), settings)
    floors = [floor_row(item, now) for item in objects]
    controls = control_rows(settings, objects, now)
    if output == "json":
        document = {"at": now.isoformat(), "floors": floors, "controls": controls}
        console.print_json(json.dumps(document))
        return
    console.print(_floor_table(floors, now))
    console.print(_controls_table(controls))


def floor_row(item: FloorObject, now: pd.Timestamp) -> dict[str, Any]:
    """Describe one floor object: value, last change, expiry, pause and revert."""
    from scaler.kube.controls import pause_reason
    from scaler.kube.expiry import expires_at
    from scaler.kube.gitops import REVERTED_ANNOTATION, RevertRecord
    from scaler.kube.inventory import annotation_record
    from scaler.kube.writer import LAST_CHANGE_ANNOTATION

    annotations = item.annotations
    expires = expires_at(annotations)
    reverted = RevertRecord.parse(annotations.get(REVERTED_ANNOTATION))
    return {
        "kind": item.kind,
        "name": item.name,
        "object": item.label,
        "field": item.target.field_text if item.target else None,
        "value": item.value,
        "last_change": annotation_record(annotations, LAST_CHANGE_ANNOTATION) or None,
        "expires_at": expires.isoformat() if expires is not None else None,
        "expired": expires is not None and expires <= now,
        "paused": pause_reason(item.obj) if item.obj is not None else None,
        "reverted": (
            {"at": reverted.at.isoformat(), "by": list(reverted.managers), "value": reverted.value}
            if reverted is not None
            else None
        ),
        "error": item.error or None,
    }


def control_rows(
    settings: Settings, objects: list[FloorObject], now: pd.Timestamp
) -> list[dict[str, str]]:
    """List the pauses (configured and annotated) and the overrides in force at ``now``."""
    from scaler.core.overrides import active_overrides
    from scaler.kube.controls import pause_reason

    guardrails = settings.guardrails
    rows: list[dict[str, str]] = []

    def add(control: str, target: str, detail: str) -> None:
        rows.append({"control": control, "applies_to": target, "detail": detail})

    if guardrails.paused:
        add("pause", "every floor", "guardrails.paused is set")
    for name in guardrails.paused_pools:
        add("pause", f"pool {name}", "listed in guardrails.paused_pools")
    for name in guardrails.paused_workloads:
        add("pause", f"workload {name}", "listed in guardrails.paused_workloads")
    for item in objects:
        reason = pause_reason(item.obj) if item.obj is not None else None
        if reason is not None:
            add("pause", f"{item.kind} {item.name}", reason)
    for item in objects:
        if item.kind == "pool" and item.obj is not None:
            budget = _budget_detail(settings, item, now)
            if budget is not None:
                add("budget", f"pool {item.name}", budget)
    for override in active_overrides(settings, now):
        kind, name = override.target
        if override.min_gpus is not None:
            amount = f"{override.min_gpus} GPUs"
        elif kind == "pool":
            amount = f"{override.min_nodes} nodes"
        else:
            amount = f"{override.min_replicas} replicas"
        detail = f"at least {amount}, {override.describe()}"
        if override.reason:
            detail += f": {override.reason}"
        add(f"override {override.name}", f"{kind} {name}", detail)
    return rows


def _budget_detail(settings: Settings, item: FloorObject, now: pd.Timestamp) -> str | None:
    """Describe a burst pool's GPU-hours today from its usage record; None without one."""
    from scaler.kube.budget_usage import read_usage

    if settings.pool(item.name).kind != "burst" or item.obj is None:
        return None
    usage = read_usage(item.obj, None, item.name, now, settings)
    if usage is None:
        return None
    limit = settings.guardrails.pool_limits(item.name).max_gpu_hours_per_day
    allowed = f"of {limit:g} " if limit is not None else ""
    return f"{usage.gpu_hours:.1f} {allowed}GPU-hours held on {usage.day.isoformat()}"


def _floor_table(rows: list[dict[str, Any]], now: pd.Timestamp) -> Table:
    table = Table(title=f"floors at {now.isoformat()}", title_justify="left")
    for column in ("kind", "name", "object", "value", "last change", "expires", "note"):
        table.add_column(column, overflow="fold")
    # Names, annotations and error messages come from the cluster, so they are escaped
    # before they reach Rich markup.
    for row in rows:
        change = row["last_change"]
        changed = (
            f"{change.get('at', '?')} {change.get('from')} -> {change.get('to')} "
            f"({change.get('rule', '?')}): {change.get('reason', '')}"
            if change
            else "-"
        )
        notes = [escape(row["error"])] if row["error"] else []
        if row["paused"]:
            notes.append(f"[yellow]paused[/]: {escape(row['paused'])}")
        if row["reverted"]:
            by = ", ".join(row["reverted"]["by"]) or "another field manager"
            notes.append(f"[red]reverted[/] by {escape(by)} at {escape(row['reverted']['at'])}")
        table.add_row(
            escape(row["kind"]),
            escape(row["name"]),
            escape(f"{row['object']} {row['field']}" if row["field"] else row["object"]),
            "-" if row["value"] is None else escape(str(row["value"])),
            escape(changed),
            _expiry_text(row["expires_at"], now),
            "; ".join(notes),
        )
    return table


def _expiry_text(stamp: str | None, now: pd.Timestamp) -> str:
    import pandas as pd

    if stamp is None:
        return "-"
    seconds = (pd.Timestamp(stamp) - now).total_seconds()
    if seconds <= 0:
        return f"[red]expired[/] {-seconds / 60:.0f} min ago ({escape(stamp)})"
    return f"in {seconds / 60:.0f} min ({escape(stamp)})"


def _controls_table(rows: list[dict[str, str]]) -> Table:
    table = Table(title="pauses and overrides in force", title_justify="left")
    for column in ("control", "applies to", "detail"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(escape(row["control"]), escape(row["applies_to"]), escape(row["detail"]))
    if not rows:
        table.add_row("none", "-", "no pause or override is in force")
    return table

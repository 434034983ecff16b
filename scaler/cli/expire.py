"""``peakcast expire-floors``: return floors peakcast stopped renewing to their baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from scaler.cli.common import (
    EXIT_TRANSIENT,
    ConfigOption,
    LogFormatOption,
    VerboseOption,
    console,
    parse_timestamp,
    reports_errors,
    setup,
)
from scaler.cli.kube_options import ContextOption, KubeconfigOption, with_kubeconfig

if TYPE_CHECKING:
    from scaler.kube.expiry import ExpiryResult


@reports_errors
def expire(
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Send the writes as server-side dry runs even when the config sets 'dry_run: false'.",
    ),
    at: str | None = typer.Option(
        None,
        "--at",
        help="Judge expiry as of this time (ISO 8601; without an offset it is read in the "
        "config's timezone). Default: now.",
    ),
    kubeconfig: Path | None = KubeconfigOption,
    context: str | None = ContextOption,
    config: Path | None = ConfigOption,
    verbose: int = VerboseOption,
    log_format: str = LogFormatOption,
) -> None:
    """Lower every floor whose expiry has passed to its baseline, with an Event on each.

    A floor expires when peakcast stops renewing it (guardrails.floor_ttl_seconds). The
    baseline is the pool's baseline_nodes or the workload's baseline_replicas (default: the
    minimum). Floors that are paused, not expired, or not above the baseline are left alone.
    Run it from a CronJob (deploy/guardrails) so a dead peakcast cannot leave a fleet scaled
    up. Exits with code 4 when a write failed.
    """
    from scaler.cli.timing import wall_clock_now
    from scaler.kube.clusters import build_cluster_clients
    from scaler.kube.expiry import expire_floors

    settings = with_kubeconfig(setup(config, verbose, log_format), kubeconfig, context)
    now = parse_timestamp(at, settings.timezone) if at else wall_clock_now()
    clients = build_cluster_clients(settings)
    results = expire_floors(clients, settings, now, dry_run=dry_run or settings.dry_run)
    console.print(_result_table(results))
    if any(result.status == "failed" for result in results):
        raise typer.Exit(EXIT_TRANSIENT)


def _result_table(results: list[ExpiryResult]) -> Table:
    table = Table(title="floor expiry", title_justify="left")
    for column in ("kind", "name", "object", "status", "value", "baseline", "expired at", "note"):
        table.add_column(column, overflow="fold")
    for result in results:
        table.add_row(
            escape(result.kind),
            escape(result.name),
            escape(result.target),
            result.status,
            "-" if result.current is None else str(result.current),
            "-" if result.baseline is None else str(result.baseline),
            "-" if result.expires_at is None else result.expires_at.isoformat(),
            escape(result.message),
        )
    return table

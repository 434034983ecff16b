"""``peakcast validate-config``: load the config and show what it defines."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from scaler.cli.common import (
    ConfigOption,
    LogFormatOption,
    VerboseOption,
    console,
    reports_errors,
    setup,
)


@reports_errors
def validate_config(
    config: Path | None = ConfigOption,
    verbose: int = VerboseOption,
    log_format: str = LogFormatOption,
) -> None:
    """Validate the config; on error print the key path, the value and what is allowed.

    Besides the config's own rules, every CSV trace is read and its columns checked, and every
    Thanos demand query is checked against the PromQL rules. No query is sent and no cluster
    is contacted.
    """
    from scaler.config_checks import check_sources
    from scaler.signals.table import configured_signal_table

    settings = setup(config, verbose, log_format)
    checked = check_sources(settings)

    pools = Table(title="pools", title_justify="left")
    for column in ("name", "kind", "GPUs/node", "nodes", "node lead time", "price/node-h"):
        pools.add_column(column)
    for pool in settings.pools:
        pools.add_row(
            escape(pool.name),
            pool.kind,
            str(pool.gpus_per_node),
            f"{pool.min_nodes}..{pool.max_nodes}",
            f"{pool.node_provisioning_seconds / 60:g} min",
            f"{pool.price_per_node_hour:g}",
        )

    workloads = Table(title="workloads", title_justify="left")
    for column in ("name", "demand", "per replica", "GPUs/replica", "pools", "start time"):
        workloads.add_column(column)
    for workload in settings.workloads:
        capacity = workload.capacity
        workloads.add_row(
            escape(f"{workload.namespace}/{workload.name}"),
            escape(f"{workload.demand.source}:{workload.demand.series} ({workload.demand.unit})"),
            f"{capacity.throughput_per_replica:g} at {capacity.target_utilization:.0%}",
            str(capacity.gpus_per_replica),
            escape(", ".join(workload.pools)),
            f"{workload.workload_start_seconds / 60:g} min",
        )

    console.print(pools)
    console.print(workloads)
    signals = configured_signal_table(settings)
    if signals is not None:
        console.print(signals)
    mode = "dry-run" if settings.dry_run else "acting on the cluster"
    console.print(
        f"[green]config is valid[/]: {len(settings.sources)} source(s), "
        f"{len(settings.pools)} pool(s), {len(settings.workloads)} workload(s), "
        f"model {settings.forecast.model}, {mode}; {checked.files} trace file(s) read, "
        f"{checked.queries} PromQL quer{'y' if checked.queries == 1 else 'ies'} checked."
    )

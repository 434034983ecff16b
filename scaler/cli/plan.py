"""``peakcast plan``: one planning cycle; dry-run by default."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from scaler.actuators.base import ApplyResult
from scaler.actuators.dry_run import DryRunActuator
from scaler.cli.common import (
    EXIT_TRANSIENT,
    ConfigOption,
    LogFormatOption,
    VerboseOption,
    console,
    reports_errors,
    setup,
)
from scaler.cli.timing import resolve_at
from scaler.core.decision import CycleDecision
from scaler.histories import HistoryLoader
from scaler.journal import DecisionJournal
from scaler.replay import plan_at
from scaler.settings import Settings
from scaler.signals.settings import has_signals


@reports_errors
def plan(
    at: str | None = typer.Option(
        None,
        "--at",
        help="Plan as of this time (ISO 8601; without an offset it is read in the config's "
        "timezone). Default: the end of a CSV trace, or now for Thanos.",
    ),
    apply: bool = typer.Option(
        False,
        "--apply",
        help="Write the floors to the cluster (server-side apply, field manager 'peakcast'). "
        "With 'dry_run: true' in the config the writes are sent as server-side dry runs: "
        "validated by the API server, never stored.",
    ),
    kubeconfig: Path | None = typer.Option(
        None,
        "--kubeconfig",
        help="Kubeconfig file for --apply; overrides kubernetes.kubeconfig_path.",
    ),
    context: str | None = typer.Option(
        None, "--context", help="Kubeconfig context for --apply; overrides kubernetes.context."
    ),
    config: Path | None = ConfigOption,
    verbose: int = VerboseOption,
    log_format: str = LogFormatOption,
) -> None:
    """Run one planning cycle and print the pool and workload floors it would set.

    On a trace (no cluster), the current floors are not read from a cluster: they come from
    replaying peakcast's policy over the trace up to --at, so the stabilisation window and the
    scale-down step have their history. Each floor is printed with the forecast quantile behind
    it and the rule that set it. Nothing is written unless --apply is given.
    """
    settings = setup(config, verbose, log_format)
    if kubeconfig is not None or context is not None:
        overrides = {
            key: value
            for key, value in (("kubeconfig_path", kubeconfig), ("context", context))
            if value is not None
        }
        kubernetes = settings.kubernetes.model_copy(update=overrides)
        settings = settings.model_copy(update={"kubernetes": kubernetes})
    loader = HistoryLoader(settings)
    workloads = list(settings.workloads)
    at_time = resolve_at(at, settings, loader, workloads)

    with console.status("replaying the policy up to --at..."):
        histories = {w.name: loader.load_until(w, at_time) for w in workloads}
        decision = plan_at(settings, histories, at_time)
    if has_signals(settings):
        decision = combine_live_signals(settings, decision)

    print_decision(decision)
    journal = DecisionJournal.from_settings(settings)
    if not apply:
        dry_results = DryRunActuator(settings).apply(decision)
        print_results(dry_results)
        if journal is not None:
            journal.record(
                decision, dry_results, applied=False, source="plan", note="printed, not applied"
            )
        return

    # Imported here so that dry-run planning never loads the Kubernetes client.
    from scaler.kube.registry import build_actuator

    actuator = build_actuator(settings, dry_run=settings.dry_run)
    results = actuator.apply(decision)
    print_results(results)
    if journal is not None:
        journal.record(decision, results, applied=True, source="plan")
    if any(result.status == "failed" for result in results):
        raise typer.Exit(EXIT_TRANSIENT)


def combine_live_signals(settings: Settings, decision: CycleDecision) -> CycleDecision:
    """Raise the plan's floors to what the live signals ask for: max(predictive, reactive)."""
    # Imported here so that planning without live signals never loads the Kubernetes client.
    from scaler.kube.registry import build_kube_client
    from scaler.signals.table import signal_table
    from scaler.signals.wiring import combine_with_signals

    with console.status("reading live signals..."):
        combined, outcome = combine_with_signals(
            settings, decision, kube_client=lambda: build_kube_client(settings.kubernetes)
        )
    console.print(signal_table(outcome))
    return combined


def print_decision(decision: CycleDecision) -> None:
    """Print the data status and every floor of ``decision`` as tables."""
    data = Table(title=f"data at {decision.at.isoformat()}", title_justify="left")
    for column in ("workload", "coverage", "newest sample", "usable", "note"):
        data.add_column(column)
    for status in decision.data:
        newest = status.last_observed.isoformat() if status.last_observed is not None else "none"
        data.add_row(
            status.workload,
            f"{status.coverage:.1%}",
            newest,
            "yes" if status.usable else "[red]no[/]",
            status.reason,
        )
    console.print(data)

    floors = Table(title="floors", title_justify="left")
    for column in ("kind", "name", "current", "desired", "rule", "forecast", "window", "reason"):
        floors.add_column(column, overflow="fold")
    for floor in decision.all_floors():
        forecast = (
            f"P{100 * floor.forecast_level:g} = {floor.forecast_value:,.1f}"
            if floor.forecast_level is not None and floor.forecast_value is not None
            else "-"
        )
        window = (
            f"{floor.window_start:%H:%M}-{floor.window_end:%H:%M}"
            if floor.window_start is not None and floor.window_end is not None
            else "-"
        )
        floors.add_row(
            floor.kind,
            floor.name,
            "-" if floor.current is None else str(floor.current),
            f"{floor.desired} {floor.unit if floor.desired != 1 else floor.unit[:-1]}",
            floor.rule,
            forecast,
            window,
            floor.reason,
        )
    console.print(floors)


def print_results(results: list[ApplyResult]) -> None:
    """Print one line per floor: the object, field and value set (or that would be set)."""
    for result in results:
        if result.status == "dry_run":
            verb = "would keep" if result.old == result.new else "would set"
        else:
            verb = result.status
        old = "?" if result.old is None else str(result.old)
        console.print(
            f"{verb}: {result.target} {result.field_path} {old} -> {result.new}"
            + (f" ({result.message})" if result.message and result.status != "dry_run" else "")
        )

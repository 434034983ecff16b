"""``peakcast plan``: one planning cycle; dry-run by default."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from forecaster.errors import TransientError
from scaler.cli.common import (
    EXIT_TRANSIENT,
    ConfigOption,
    LogFormatOption,
    VerboseOption,
    console,
    reports_errors,
    setup,
)
from scaler.settings import Settings
from scaler.signals.settings import has_signals

if TYPE_CHECKING:
    import pandas as pd

    from forecaster.forecast import Forecast
    from scaler.actuators.base import Actuator, ApplyResult
    from scaler.core.decision import CycleDecision
    from scaler.histories import HistoryLoader


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

    Without --apply (dry-run) no cluster is needed: the current floors come from replaying
    peakcast's policy over the history up to --at, so the stabilization window and the
    scale-down step have their history. With --apply the current floors are read from the
    cluster and the cycle writes, as one cycle of 'peakcast run' does. Each floor is printed
    with the forecast quantile behind it and the rule that set it.
    """
    from scaler.actuators.dry_run import DryRunActuator
    from scaler.cli.timing import resolve_at
    from scaler.histories import HistoryLoader
    from scaler.journal import DecisionJournal
    from scaler.replay import plan_at

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
    if apply:
        _apply_live(settings, loader, at_time)
        return

    with console.status("replaying the policy up to --at..."):
        histories = {w.name: loader.load_until(w, at_time) for w in workloads}
        decision = plan_at(settings, histories, at_time)
    if has_signals(settings):
        decision = combine_live_signals(settings, decision)

    print_decision(decision)
    dry_results = DryRunActuator(settings).apply(decision)
    print_results(dry_results)
    journal = DecisionJournal.from_settings(settings)
    if journal is not None:
        journal.record(
            decision, dry_results, applied=False, source="plan", note="printed, not applied"
        )


def _apply_live(settings: Settings, loader: HistoryLoader, at_time: pd.Timestamp) -> None:
    """Run one live cycle at ``at_time`` against the cluster and print what it wrote.

    Unlike the dry-run replay, the current floors are read from the cluster and the policy
    starts from them as the service does after a restart, so nothing drops within the first
    stabilization window. Live signals, when configured, raise floors first.
    """
    # Imported here so that dry-run planning never loads the Kubernetes client.
    from scaler.cycle import LiveCycle
    from scaler.journal import DecisionJournal
    from scaler.kube.registry import build_actuator, build_kube_client

    actuator: Actuator = build_actuator(settings, dry_run=settings.dry_run)
    journal = DecisionJournal.from_settings(settings)
    fast_loop = None
    views: dict[str, LiveCycle] = {}
    if has_signals(settings):
        from scaler.signals.wiring import build_fast_loop

        def forecast_of(workload: str) -> Forecast | None:
            view = views["cycle"].view(workload)
            return view.forecast if view is not None else None

        fast_loop = build_fast_loop(
            settings,
            actuator,
            kube=build_kube_client(settings.kubernetes),
            forecasts=forecast_of,
            journal=journal,
        )
        actuator = fast_loop.actuator

    cycle = LiveCycle(
        settings,
        loader,
        actuator,
        journal=journal,
        lift=fast_loop.lift if fast_loop is not None else None,
    )
    views["cycle"] = cycle
    if fast_loop is not None:
        fast_loop.use_guardrail_state(cycle.guardrail_state)
    with console.status("reading history and fitting forecasts..."):
        for workload in settings.workloads:
            cycle.refresh(workload, at_time, refit=True)
    if fast_loop is not None:
        fast_loop.run_once(at_time)
    outcome = cycle.plan(at_time, may_apply=lambda: True)
    if outcome is None:
        raise TransientError(
            "the current floors could not be read from the cluster, so nothing was written; "
            "check the API server and peakcast's RBAC, then run again"
        )
    print_decision(outcome.decision)
    print_results(list(outcome.results))
    if any(result.status == "failed" for result in outcome.results):
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
            escape(status.workload),
            f"{status.coverage:.1%}",
            newest,
            "yes" if status.usable else "[red]no[/]",
            escape(status.reason),
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
            escape(floor.name),
            "-" if floor.current is None else str(floor.current),
            f"{floor.desired} {floor.unit if floor.desired != 1 else floor.unit[:-1]}",
            floor.rule,
            forecast,
            window,
            escape(floor.reason),
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
        line = f"{verb}: {result.target} {result.field_path} {old} -> {result.new}"
        if result.message and result.status != "dry_run":
            line += f" ({result.message})"
        console.print(line, markup=False, highlight=False)

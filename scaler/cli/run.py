"""``peakcast run``: the in-cluster service, or one cycle with ``--once``."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from forecaster.errors import ConfigError
from scaler.cli.common import (
    EXIT_NOT_APPLIED,
    ConfigOption,
    LogFormatOption,
    VerboseOption,
    console,
    reports_errors,
    setup,
)
from scaler.cli.plan import print_decision, print_results
from scaler.settings import Settings

if TYPE_CHECKING:
    from kubernetes import client as k8s

    from scaler.service.app import LeaseSetup, ServiceApp

logger = logging.getLogger(__name__)

STOP_POLL_SECONDS = 1.0


@reports_errors
def run(
    listen: str = typer.Option(
        "127.0.0.1:8080",
        "--listen",
        help="HOST:PORT of /metrics, /healthz and /readyz; use 0.0.0.0:8080 in a pod so the "
        "kubelet and Prometheus reach it.",
    ),
    once: bool = typer.Option(
        False,
        "--once",
        help="Refresh every workload, run one planning cycle, and exit. Exits with code 6 when "
        "no cycle was applied (another replica holds the Lease, or the log gives the reason).",
    ),
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="Kubeconfig file; overrides kubernetes.kubeconfig_path."
    ),
    context: str | None = typer.Option(
        None, "--context", help="Kubeconfig context; overrides kubernetes.context."
    ),
    in_cluster: bool = typer.Option(
        False,
        "--in-cluster",
        help="Use the pod's service account; fails outside a pod instead of falling back to a "
        "kubeconfig.",
    ),
    leader_election: bool = typer.Option(
        True,
        "--leader-election/--no-leader-election",
        help="Act only while holding the service.lease_name Lease. Turn it off only when a "
        "single replica runs.",
    ),
    identity: str | None = typer.Option(
        None,
        "--identity",
        help="This replica's name in the Lease; default service.identity, then $POD_NAME, "
        "then the host name.",
    ),
    config: Path | None = ConfigOption,
    verbose: int = VerboseOption,
    log_format: str = LogFormatOption,
) -> None:
    """Run the scheduled service: refresh forecasts, plan and apply floors, serve metrics.

    The service logs every decision at INFO, so it logs at INFO without -v; -vv adds DEBUG.
    Writes follow the config's dry_run: with dry_run true every write is a server-side dry
    run. SIGTERM or SIGINT stops it: a cycle that is applying finishes, one that is not yet
    applying is abandoned, and the Lease is released.
    """
    from scaler.kube.registry import build_actuator, build_kube_client
    from scaler.service.app import ServiceApp

    settings = setup(config, max(verbose, 1), log_format)
    host, port = parse_listen(listen)
    settings = _with_cluster_options(settings, kubeconfig, context, in_cluster)
    api_client = _api_client(settings, in_cluster)
    actuator = build_actuator(settings, settings.dry_run, api_client=api_client)
    lease = _lease(settings, api_client, identity) if leader_election else None
    signal_kube = build_kube_client(settings.kubernetes, api_client)
    app = ServiceApp(settings, actuator, lease=lease, host=host, port=port, signal_kube=signal_kube)

    if once:
        _run_once(app)
        return
    _serve(app)


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT``; raise ConfigError naming ``--listen`` when it is not one."""
    host, _, port_text = value.rpartition(":")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError("--listen", value, "HOST:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")
    return host.strip("[]"), int(port_text)


def _with_cluster_options(
    settings: Settings, kubeconfig: Path | None, context: str | None, in_cluster: bool
) -> Settings:
    if in_cluster and kubeconfig is not None:
        raise ConfigError("--in-cluster", True, "either --in-cluster or --kubeconfig, not both")
    changes: dict[str, object] = {}
    if kubeconfig is not None:
        changes["kubeconfig_path"] = kubeconfig
    if context is not None:
        changes["context"] = context
    if not changes:
        return settings
    kubernetes = settings.kubernetes.model_copy(update=changes)
    return settings.model_copy(update={"kubernetes": kubernetes})


def _api_client(settings: Settings, in_cluster: bool) -> k8s.ApiClient:
    from scaler.kube.client import build_api_client

    kube = settings.kubernetes
    if in_cluster and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        raise ConfigError(
            "--in-cluster", True, "a pod environment; KUBERNETES_SERVICE_HOST is not set"
        )
    if in_cluster:
        return build_api_client()
    return build_api_client(
        kubeconfig_path=kube.kubeconfig_path, context=kube.context, host=kube.host
    )


def _lease(settings: Settings, api_client: k8s.ApiClient, identity: str | None) -> LeaseSetup:
    from kubernetes import client as k8s

    from scaler.kube.events import default_reporting_instance
    from scaler.service.app import LeaseSetup
    from scaler.service.leader import LeaseConfig

    service = settings.service
    config = LeaseConfig(
        name=service.lease_name,
        namespace=service.lease_namespace or os.environ.get("POD_NAMESPACE") or "default",
        identity=identity or service.identity or default_reporting_instance(),
        lease_duration_seconds=service.lease_duration_seconds,
        renew_deadline_seconds=service.renew_deadline_seconds,
        retry_period_seconds=service.retry_period_seconds,
    )
    return LeaseSetup(k8s.CoordinationV1Api(api_client), config)


def _run_once(app: ServiceApp) -> None:
    outcome = app.run_once()
    if outcome is None or not outcome.applied:
        console.print("No cycle was applied; the log on stderr gives the reason.")
        raise typer.Exit(EXIT_NOT_APPLIED)
    print_decision(outcome.decision)
    print_results(list(outcome.results))


def _serve(app: ServiceApp) -> None:
    def on_signal(number: int, frame: FrameType | None) -> None:
        logger.info("Received %s; stopping", signal.Signals(number).name)
        app.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.excepthook = _log_thread_exception
    app.start()
    while not app.wait(STOP_POLL_SECONDS):
        continue
    app.shutdown()


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    name = args.thread.name if args.thread is not None else "unknown"
    logger.error(
        "Thread %s stopped on an unexpected error",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
    )

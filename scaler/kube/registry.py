"""Build a ``KubeActuator`` from settings: the client, one mode per written pool, one gate each.

With ``clusters`` configured, one ``KubeActuator`` is built per workload cluster and a
``MultiClusterActuator`` combines them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import pandas as pd
from kubernetes import client as k8s

from scaler.gates.registry import build_gate
from scaler.kube.actuator import Clock, KubeActuator
from scaler.kube.budget_usage import BudgetUsageRecorder
from scaler.kube.client import KubeClient, build_api_client
from scaler.kube.clusters import (
    ClusterClients,
    build_cluster_clients,
    serving_clusters,
    settings_for_cluster,
)
from scaler.kube.controls import PauseGuard
from scaler.kube.events import EventRecorder, default_reporting_instance
from scaler.kube.expiry import FloorRenewal
from scaler.kube.gitops import RevertGuard
from scaler.kube.multi_cluster import MultiClusterActuator
from scaler.kube.pool_modes import POOL_MODES
from scaler.settings import KubernetesSettings, Settings


def wall_clock() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def build_kube_client(
    settings: KubernetesSettings, api_client: k8s.ApiClient | None = None
) -> KubeClient:
    """Wrap ``api_client``, or build one from the kubeconfig, host or in-cluster settings."""
    if api_client is None:
        api_client = build_api_client(
            kubeconfig_path=settings.kubeconfig_path, context=settings.context, host=settings.host
        )
    return KubeClient(api_client, settings.field_manager, settings.request_timeout_seconds)


def build_actuator(
    settings: Settings,
    dry_run: bool,
    *,
    api_client: k8s.ApiClient | None = None,
    clock: Clock = wall_clock,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    api_clients: Mapping[str, k8s.ApiClient] | None = None,
) -> KubeActuator | MultiClusterActuator:
    """Build the actuator that writes ``settings``' floors to the cluster.

    With ``dry_run`` every write is sent as a server-side dry run (``dryRun=All``): the API
    server validates it and reports conflicts, nothing is stored and no Event is created.
    ``clock`` gives cluster time for deadlines, lead times and Events; ``sleep`` and
    ``monotonic`` pace the Keptn gate's wait. ``api_clients`` (by cluster name) replaces the
    clients built from ``clusters``.
    """
    if settings.clusters:
        clients = build_cluster_clients(settings, api_clients)
        actuators = {
            name: _cluster_actuator(settings, clients, name, dry_run, clock, sleep, monotonic)
            for name in serving_clusters(settings)
        }
        return MultiClusterActuator(actuators)
    client = build_kube_client(settings.kubernetes, api_client)
    return _actuator(settings, client, dry_run, clock, sleep, monotonic)


def _cluster_actuator(
    settings: Settings,
    clients: ClusterClients,
    cluster: str,
    dry_run: bool,
    clock: Clock,
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
) -> tuple[Settings, KubeActuator]:
    narrowed = settings_for_cluster(settings, cluster)
    client = clients.for_cluster_objects(cluster)
    return narrowed, _actuator(narrowed, client, dry_run, clock, sleep, monotonic)


def _actuator(
    settings: Settings,
    client: KubeClient,
    dry_run: bool,
    clock: Clock,
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
) -> KubeActuator:
    kube = settings.kubernetes
    modes = {
        pool.name: POOL_MODES[pool.actuator.mode](client, pool)
        for pool in settings.pools
        if pool.actuator is not None
    }
    gates = {
        workload.name: build_gate(settings, workload, client, sleep, monotonic)
        for workload in settings.workloads
    }
    events = EventRecorder(
        client,
        kube.event_reporting_controller,
        kube.event_reporting_instance or default_reporting_instance(),
        clock,
    )
    reverts = RevertGuard(
        client, events, settings.guardrails.revert_backoff_seconds, dry_run, clock
    )
    renewal = FloorRenewal(settings.guardrails.floor_ttl_seconds, clock)
    return KubeActuator(
        settings,
        client,
        modes,
        gates,
        events,
        dry_run=dry_run,
        clock=clock,
        guards=(PauseGuard(settings.guardrails), reverts),
        annotation_hooks=(renewal, reverts.clear, BudgetUsageRecorder(settings, clock)),
    )

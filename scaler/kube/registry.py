"""Build a ``KubeActuator`` from settings: the client, one mode per written pool, one gate each."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
from kubernetes import client as k8s

from scaler.gates.registry import build_gate
from scaler.kube.actuator import Clock, KubeActuator
from scaler.kube.client import KubeClient, build_api_client
from scaler.kube.custom_field import CustomFieldMode
from scaler.kube.events import EventRecorder, default_reporting_instance
from scaler.kube.gpunodepool import GPUNodePoolMode
from scaler.kube.nodeside import PoolMode
from scaler.kube.placeholder import PlaceholderMode
from scaler.settings import KubernetesSettings, PoolSettings, Settings

POOL_MODES: dict[str, Callable[[KubeClient, PoolSettings], PoolMode]] = {
    "custom_field": CustomFieldMode,
    "gpunodepool": GPUNodePoolMode,
    "placeholder": PlaceholderMode,
}


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
) -> KubeActuator:
    """Build the actuator that writes ``settings``' floors to the cluster.

    With ``dry_run`` every write is sent as a server-side dry run (``dryRun=All``): the API
    server validates it and reports conflicts, nothing is stored and no Event is created.
    ``clock`` gives cluster time for deadlines, lead times and Events; ``sleep`` and
    ``monotonic`` pace the Keptn gate's wait.
    """
    kube = settings.kubernetes
    client = build_kube_client(kube, api_client)
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
    return KubeActuator(settings, client, modes, gates, events, dry_run=dry_run, clock=clock)

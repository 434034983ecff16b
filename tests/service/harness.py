"""Pieces the service tests share: the trace in Prometheus, the cluster, the config, the app.

The bundled ServeGen trace (14 days of 10-minute request rates) is backfilled into a real
Prometheus server. It is shifted so that its last sample lies at most 10 minutes before the
wall clock. A service reading the wall clock and one on a test clock inside the trace both
find fresh data. The cluster is the fake API server with one static and one burst GPU pool and an
HPA-scaled workload.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from scaler.config_loader import parse_settings
from scaler.cycle import CycleOutcome
from scaler.kube.client import build_api_client
from scaler.kube.registry import build_actuator
from scaler.service.app import LeaseSetup, ServiceApp
from scaler.service.leader import LeaseConfig
from scaler.settings import Settings
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube
from tests.servers.prometheus import PrometheusServer, backfill_csv_trace

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "data" / "servegen_m-large_10min.csv"
TRACE_STEP = pd.Timedelta(minutes=10)
METRIC = "llm_requests_per_second"
QUERY = 'llm_requests_per_second{model="m-large"}'
POOL = "cloud-h100"
WORKLOAD = "llm"
POOL_NAMESPACE = b.POOL_NAMESPACE
LEASE_NAMESPACE = "peakcast-system"
LEASE_NAME = "peakcast"
CLOUD_NODES = 12
WAIT_SECONDS = 30.0


def backfill_trace(server: PrometheusServer) -> pd.Timestamp:
    """Backfill the trace so its last sample is the newest 10-minute mark; return that time."""
    rows = len(pd.read_csv(TRACE, usecols=["timestamp"]))
    end = pd.Timestamp.now(tz="UTC").floor(TRACE_STEP)
    start = end - (rows - 1) * TRACE_STEP
    backfill_csv_trace(
        server, TRACE, "req_per_s", METRIC, labels={"model": "m-large"}, start_at=start
    )
    return end


def settings_dict(prometheus_url: str, kube_url: str, **service: Any) -> dict[str, Any]:
    """A config reading the trace from Prometheus and writing to the fake API server.

    The schedule is fast (1 s) and the Lease short, so the tests take seconds.
    """
    service_settings: dict[str, Any] = {
        "refresh_interval_seconds": 1,
        "plan_interval_seconds": 1,
        "refit_interval_seconds": 3600,
        "jitter_seconds": 0,
        "misfire_grace_seconds": 5,
        "workload_timeout_seconds": 10,
        "lease_name": LEASE_NAME,
        "lease_namespace": LEASE_NAMESPACE,
        "lease_duration_seconds": 3,
        "renew_deadline_seconds": 2,
        "retry_period_seconds": 0.5,
    }
    service_settings.update(service)
    return {
        "version": 1,
        "dry_run": False,
        "sources": {
            "prometheus": {
                "kind": "thanos",
                "url": prometheus_url,
                "max_retries": 0,
                "connect_timeout_seconds": 1,
                "read_timeout_seconds": 5,
                # Plain Prometheus keeps every sample raw.
                "raw_resolution_max_age_seconds": 10**9,
                "five_minute_resolution_max_age_seconds": 10**9,
            }
        },
        "forecast": {
            "model": "holt_winters",
            "step_seconds": 1800,
            "season_lengths_seconds": [86400],
            "horizon_seconds": 6 * 3600,
            "history_seconds": 7 * 86400,
            "refit_interval_seconds": 86400,
            "calibration_windows": 4,
        },
        "pools": [
            {"name": "onprem-h100", "kind": "static", "gpus_per_node": 8, "max_nodes": 2},
            {
                "name": POOL,
                "kind": "burst",
                "gpus_per_node": 8,
                "max_nodes": CLOUD_NODES,
                "node_provisioning_seconds": 900,
                "actuator": {"mode": "gpunodepool", "name": POOL, "namespace": b.POOL_NAMESPACE},
            },
        ],
        "workloads": [
            {
                "name": WORKLOAD,
                "namespace": b.NAMESPACE,
                "demand": {
                    "source": "prometheus",
                    "series": QUERY,
                    "unit": "requests_per_second",
                    "step_seconds": 600,
                },
                "capacity": {
                    "throughput_per_replica": 25.0,
                    "gpus_per_replica": 2,
                    "min_replicas": 2,
                    "max_replicas": 64,
                },
                "pools": ["onprem-h100", POOL],
                "workload_start_seconds": 420,
                "target": {"kind": "hpa", "name": WORKLOAD, "namespace": b.NAMESPACE},
            }
        ],
        "policy": {"stale_data_seconds": 1800, "stabilization_window_seconds": 1800},
        "service": service_settings,
    }


def settings(prometheus_url: str, kube_url: str, **service: Any) -> Settings:
    return parse_settings(settings_dict(prometheus_url, kube_url, **service), ROOT)


def seed_cluster(kube: FakeKube, pool_nodes: int = 0, min_replicas: int = 2) -> None:
    """Seed GPU-ready cloud nodes, the GPUNodePool, and the workload's Deployment and HPA.

    Every cloud node already exists, so the pool-ready gate passes whenever the floor rises.
    """
    for index in range(CLOUD_NODES):
        kube.seed(b.node(f"cloud-{index}", POOL, gpus=8))
    kube.seed(b.gpu_node_pool(POOL, desired=pool_nodes))
    kube.seed(b.deployment(WORKLOAD))
    kube.seed(b.hpa(WORKLOAD, min_replicas=min_replicas))


def pool_floor(kube: FakeKube) -> int | None:
    obj = kube.get("platform.peakcast.io/v1alpha1", "gpunodepools", POOL, b.POOL_NAMESPACE)
    return None if obj is None else obj["spec"].get("desiredNodes")


def workload_floor(kube: FakeKube) -> int | None:
    obj = kube.get("autoscaling/v2", "horizontalpodautoscalers", WORKLOAD, b.NAMESPACE)
    return None if obj is None else obj["spec"].get("minReplicas")


def lease_holder(kube: FakeKube) -> str | None:
    lease = kube.get("coordination.k8s.io/v1", "leases", LEASE_NAME, LEASE_NAMESPACE)
    return None if lease is None else lease.get("spec", {}).get("holderIdentity")


def floor_writes(kube: FakeKube) -> list[str]:
    """Return the resources of every server-side apply peakcast sent to a floor object."""
    return [
        entry.resource
        for entry in kube.writes()
        if entry.verb == "apply"
        and not entry.subresource
        and entry.resource in ("gpunodepools", "horizontalpodautoscalers")
    ]


@contextmanager
def running_app(
    settings: Settings,
    kube: FakeKube,
    clock: Callable[[], pd.Timestamp],
    identity: str = "replica-a",
) -> Iterator[ServiceApp]:
    """Start a service on 127.0.0.1 (a free port) against ``kube``; stop it and release."""
    api = build_api_client(host=kube.url)
    app = make_app(settings, api, clock, identity)
    app.start()
    try:
        yield app
    finally:
        if not app.stopping.is_set():
            app.shutdown()
        api.close()


def make_app(
    settings: Settings,
    api: k8s.ApiClient,
    clock: Callable[[], pd.Timestamp],
    identity: str,
) -> ServiceApp:
    actuator = build_actuator(settings, dry_run=False, api_client=api, clock=clock)
    service = settings.service
    lease = LeaseSetup(
        k8s.CoordinationV1Api(api),
        LeaseConfig(
            name=service.lease_name,
            namespace=service.lease_namespace or "default",
            identity=identity,
            lease_duration_seconds=service.lease_duration_seconds,
            renew_deadline_seconds=service.renew_deadline_seconds,
            retry_period_seconds=service.retry_period_seconds,
        ),
    )
    return ServiceApp(settings, actuator, lease=lease, clock=clock, host="127.0.0.1", port=0)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll ``condition`` until it returns a true value; fail the test naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_cycle(app: ServiceApp, at: pd.Timestamp) -> CycleOutcome:
    """Wait until ``app`` has applied the cycle at ``at``; return its outcome."""

    def applied_at() -> CycleOutcome | None:
        outcome = app.last_outcome
        if outcome is not None and outcome.applied and outcome.decision.at == at:
            return outcome
        return None

    result: CycleOutcome = wait_until(applied_at, f"the cycle at {at} to be applied")
    return result


def http_get(url: str) -> requests.Response:
    """GET a loopback URL without any proxy from the environment."""
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=5)


def base_url(app: ServiceApp) -> str:
    host, port = app.address
    return f"http://{host}:{port}"


def scrape(app: ServiceApp) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of ``/metrics`` keyed by (name, sorted labels)."""
    response = http_get(f"{base_url(app)}/metrics")
    response.raise_for_status()
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], metric: str, **labels: str
) -> float | None:
    return samples.get((metric, tuple(sorted(labels.items()))))

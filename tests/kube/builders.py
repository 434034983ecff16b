"""Objects, settings and decisions for the Kubernetes tests, built the way a cluster has them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd

from scaler.config_loader import parse_settings
from scaler.core.decision import CycleDecision, FloorDecision
from scaler.settings import Settings

START = pd.Timestamp("2026-03-02T08:00:00Z")
NAMESPACE = "serving"
POOL_NAMESPACE = "gpu-pools"
Obj = dict[str, Any]


class FakeClock:
    """A clock tests move by hand; the actuator reads it instead of the wall clock."""

    def __init__(self, now: pd.Timestamp = START) -> None:
        self.now = now

    def __call__(self) -> pd.Timestamp:
        return self.now

    def advance(self, seconds: float) -> pd.Timestamp:
        self.now = self.now + pd.Timedelta(seconds=seconds)
        return self.now


def iso(at: pd.Timestamp) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str, pool: str, gpus: int, created: pd.Timestamp = START, ready: bool = True) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"peakcast.io/pool": pool},
            "creationTimestamp": iso(created),
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "allocatable": {"nvidia.com/gpu": str(gpus), "cpu": "32"},
        },
    }


def gpu_node_pool(name: str, desired: int | None = None, ready: bool = True, **spec: Any) -> Obj:
    body: Obj = {"gpuType": "nvidia-h100", "gpusPerNode": 8, "minNodes": 0, "maxNodes": 12}
    body.update(spec)
    if desired is not None:
        body["desiredNodes"] = desired
    status = "True" if ready else "False"
    return {
        "apiVersion": "platform.peakcast.io/v1alpha1",
        "kind": "GPUNodePool",
        "metadata": {"name": name, "namespace": POOL_NAMESPACE},
        "spec": body,
        "status": {
            "conditions": [
                {"type": "Ready", "status": status, "reason": "Available" if ready else "Creating"},
                {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"},
            ]
        },
    }


def deployment(name: str, namespace: str = NAMESPACE, replicas: int | None = None) -> Obj:
    spec: Obj = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def hpa(
    name: str, min_replicas: int | None = 2, max_replicas: int = 64, target: str | None = None
) -> Obj:
    spec: Obj = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target or name},
        "maxReplicas": max_replicas,
    }
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def capacity_buffer(name: str, replicas: int = 0) -> Obj:
    return {
        "apiVersion": "example.org/v1",
        "kind": "CapacityBuffer",
        "metadata": {"name": name, "namespace": POOL_NAMESPACE},
        "spec": {"replicas": replicas},
    }


ACTUATORS: dict[str, Obj] = {
    "gpunodepool": {"mode": "gpunodepool", "name": "cloud-h100", "namespace": POOL_NAMESPACE},
    "placeholder": {
        "mode": "placeholder",
        "deployment_name": "cloud-h100-placeholder",
        "deployment_namespace": POOL_NAMESPACE,
    },
    "custom_field": {
        "mode": "custom_field",
        "api_version": "example.org/v1",
        "kind": "CapacityBuffer",
        "plural": "capacitybuffers",
        "name": "cloud-h100",
        "namespace": POOL_NAMESPACE,
        "field_path": "spec.replicas",
    },
}


def settings_dict(mode: str = "gpunodepool", gate: Obj | None = None, **pool: Any) -> Obj:
    """A config with one static and one burst pool and one HPA-scaled LLM workload."""
    burst: Obj = {
        "name": "cloud-h100",
        "kind": "burst",
        "gpus_per_node": 8,
        "max_nodes": 12,
        "node_provisioning_seconds": 900,
        "actuator": copy.deepcopy(ACTUATORS[mode]),
    }
    burst["actuator"].update(pool.pop("actuator", {}))
    burst.update(pool)
    workload: Obj = {
        "name": "llm",
        "namespace": NAMESPACE,
        "demand": {"source": "trace", "series": "req_per_s", "unit": "requests_per_second"},
        "capacity": {"throughput_per_replica": 25.0, "gpus_per_replica": 2, "max_replicas": 64},
        "pools": ["onprem-h100", "cloud-h100"],
        "target": {"kind": "hpa", "name": "llm", "namespace": NAMESPACE},
    }
    if gate is not None:
        workload["gate"] = gate
    return {
        "version": 1,
        "dry_run": False,
        "sources": {
            "trace": {"kind": "csv", "path": "trace.csv"},
            "thanos": {"kind": "thanos", "url": "http://127.0.0.1:9"},
        },
        "pools": [
            {
                "name": "onprem-h100",
                "kind": "static",
                "gpus_per_node": 8,
                "min_nodes": 2,
                "max_nodes": 2,
            },
            burst,
        ],
        "workloads": [workload],
    }


def settings(mode: str = "gpunodepool", gate: Obj | None = None, **pool: Any) -> Settings:
    return parse_settings(settings_dict(mode, gate, **pool), Path("."))


def decision(
    pool_nodes: int,
    replicas: int,
    current_nodes: int | None = None,
    current_replicas: int | None = None,
    at: pd.Timestamp = START,
    pools: dict[str, int] | None = None,
) -> CycleDecision:
    floors = [
        FloorDecision(
            "pool",
            "cloud-h100",
            pool_nodes,
            current_nodes,
            "forecast",
            f"P90 forecast needs {pool_nodes} nodes at the peak",
        )
    ]
    for name, nodes in (pools or {}).items():
        floors.append(FloorDecision("pool", name, nodes, None, "forecast", f"{name} needs {nodes}"))
    workload = FloorDecision(
        "workload",
        "llm",
        replicas,
        current_replicas,
        "forecast",
        f"P90 forecast needs {replicas} replicas",
    )
    return CycleDecision(at=at, pools=tuple(floors), workloads=(workload,))

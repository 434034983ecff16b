"""Both lead-time phases are measured and kept on the cluster's objects across restarts."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from kubernetes import client as k8s

from scaler.kube.leadtime import (
    NODE_PROVISIONING_ANNOTATION,
    PENDING_RAISE_ANNOTATION,
    WORKLOAD_START_ANNOTATION,
    LeadTimeStats,
    with_measured_lead_times,
    workload_phase_changes,
)
from scaler.kube.registry import build_actuator
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube


def pool_annotations(kube: FakeKube) -> dict[str, str]:
    obj = kube.get("platform.peakcast.io/v1alpha1", "gpunodepools", "cloud-h100", b.POOL_NAMESPACE)
    assert obj is not None
    return dict(obj["metadata"].get("annotations") or {})


def pod(
    name: str, scheduled: pd.Timestamp, ready: pd.Timestamp | None, restarts: int = 0
) -> dict[str, Any]:
    conditions = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": b.iso(scheduled)}
    ]
    if ready is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": b.iso(ready)})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": b.NAMESPACE, "labels": {"app": "llm"}},
        "spec": {"nodeName": "cloud-0", "containers": [{"name": "main"}]},
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "containerStatuses": [{"name": "main", "restartCount": restarts}],
        },
    }


def test_node_provisioning_time_survives_restart(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.gpu_node_pool("cloud-h100", desired=0))
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(b.hpa("llm", min_replicas=2))
    settings = b.settings()
    first = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    first.apply(b.decision(pool_nodes=2, replicas=2))
    pending = json.loads(pool_annotations(fake_kube)[PENDING_RAISE_ANNOTATION])

    for index in range(2):
        fake_kube.seed(b.node(f"cloud-{index}", "cloud-h100", gpus=8, created=clock.now))
    clock.advance(540)
    restarted = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    restarted.apply(b.decision(pool_nodes=2, replicas=2))

    assert pending == {"at": b.START.isoformat(), "nodes": 2}
    annotations = pool_annotations(fake_kube)
    assert PENDING_RAISE_ANNOTATION not in annotations
    stats = LeadTimeStats.from_annotation(annotations[NODE_PROVISIONING_ANNOTATION])
    assert stats.samples == (540.0,)
    later = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    assert later.lead_times()[("pool", "cloud-h100")].samples == (540.0,)


def test_workload_start_time_is_stored_on_floor_owner(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.gpu_node_pool("cloud-h100", desired=0))
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(b.hpa("llm", min_replicas=2))
    fake_kube.seed(pod("llm-a", b.START, b.START + pd.Timedelta(seconds=300)))
    fake_kube.seed(pod("llm-b", b.START, b.START + pd.Timedelta(seconds=420)))
    fake_kube.seed(pod("llm-c", b.START, None))
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)

    actuator.apply(b.decision(pool_nodes=0, replicas=2))
    actuator.apply(b.decision(pool_nodes=0, replicas=2))

    hpa = fake_kube.get("autoscaling/v2", "horizontalpodautoscalers", "llm", b.NAMESPACE)
    stats = LeadTimeStats.from_annotation(hpa["metadata"]["annotations"][WORKLOAD_START_ANNOTATION])
    assert sorted(stats.samples) == [300.0, 420.0]  # counted once, though applied twice
    assert actuator.lead_times()[("workload", "llm")].quantile(0.95) == 420.0


def test_restarted_pod_is_not_a_sample() -> None:
    restarted = pod("llm-a", b.START, b.START + pd.Timedelta(hours=3), restarts=1)

    assert workload_phase_changes({}, [restarted]) == {}


def test_samples_are_bounded() -> None:
    stats = LeadTimeStats().add(float(s) for s in range(200))

    assert stats.count == 50
    assert stats.samples[0] == 150.0


def test_measured_lead_times_replace_configured() -> None:
    settings = b.settings()
    measured = {
        ("pool", "cloud-h100"): LeadTimeStats((600.0, 700.0, 1100.0)),
        ("workload", "llm"): LeadTimeStats((200.0,)),
    }

    updated = with_measured_lead_times(settings, measured)

    assert updated.pool("cloud-h100").node_provisioning_seconds == 1100
    assert updated.pool("onprem-h100").node_provisioning_seconds == 600  # configured default
    assert updated.workload("llm").workload_start_seconds == 300  # one sample is too few

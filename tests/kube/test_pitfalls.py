"""Known failures of GPU pools and autoscalers from real users, each replayed as a test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from kubernetes import client as k8s

from scaler.config_loader import parse_settings
from scaler.core.decision import RULE_MISSING_DATA_HOLD, RULE_REACTIVE, CycleDecision, FloorDecision
from scaler.kube.client import KubeClient
from scaler.kube.leadtime import (
    NODE_PROVISIONING_ANNOTATION,
    PENDING_RAISE_ANNOTATION,
    LeadTimeStats,
    effective_seconds,
    node_arrival_timeout_seconds,
)
from scaler.kube.readiness import assess_nodes, reactive_node_floor
from scaler.kube.registry import build_actuator
from scaler.kube.resources import GPU_NODE_POOL
from scaler.settings import Settings
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube

# --- an empty query result during a Prometheus incident is missing data, not zero ----------


def test_missing_data_hold_keeps_floor_and_writes_nothing(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(b.hpa("llm", min_replicas=8))
    raw = b.settings_dict()
    del raw["pools"][1]["actuator"]
    settings = parse_settings(raw, Path("."))
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    hold = FloorDecision("workload", "llm", 8, 8, RULE_MISSING_DATA_HOLD, "query returned []")

    results = actuator.apply(CycleDecision(b.START, (), (hold,)))

    assert results[0].status == "unchanged"
    assert fake_kube.writes() == []
    hpa = fake_kube.get("autoscaling/v2", "horizontalpodautoscalers", "llm", b.NAMESPACE)
    assert hpa["spec"]["minReplicas"] == 8


# --- cold start, no measured lead time yet -------------------------------------------------


def test_lead_time_cold_start_uses_configured_value() -> None:
    assert effective_seconds(LeadTimeStats(), 900) == 900
    assert effective_seconds(LeadTimeStats((1200.0, 1300.0)), 900) == 900
    assert LeadTimeStats.from_annotation("{not json", "pool cloud-h100") == LeadTimeStats()


def test_reactive_floor_is_applied_like_any_other(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.node("cloud-0", "cloud-h100", gpus=8))
    fake_kube.seed(b.gpu_node_pool("cloud-h100", desired=0))
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(b.hpa("llm", min_replicas=2))
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)
    pool = FloorDecision("pool", "cloud-h100", 1, 0, RULE_REACTIVE, "3 pending GPU pods")
    workload = FloorDecision("workload", "llm", 3, 2, RULE_REACTIVE, "demand above plan")

    results = actuator.apply(CycleDecision(b.START, (pool,), (workload,)))

    assert [r.status for r in results] == ["changed", "changed"]
    events = fake_kube.list("events.k8s.io/v1", "events")
    assert {e["reason"] for e in events} == {"Reactive"}


# --- a node that is Ready before its GPUs are allocatable is coming, not empty -------------


def test_one_pending_gpu_pod_requests_exactly_one_node() -> None:
    """1 pod wants 1 GPU; the node is Ready at T+90 s with 0 GPUs until T+8 min; 10 s loop."""
    floor, requested = 0, []
    for second in range(0, 10 * 60, 10):
        now = b.START + pd.Timedelta(seconds=second)
        nodes = []
        if second >= 90:
            gpus = 1 if second >= 8 * 60 else 0
            nodes.append(
                b.node("gpu-0", "cloud-l4", gpus, created=b.START + pd.Timedelta(seconds=90))
            )
        readiness = assess_nodes("cloud-l4", nodes, now, gpu_init_timeout_seconds=900)
        pending_gpus = 0 if readiness.ready_nodes else 1
        floor = reactive_node_floor(floor, readiness, pending_gpus, gpus_per_node=1)
        requested.append(floor)
    assert max(requested) == 1
    assert requested[-1] == 1


def test_gpu_less_node_fails_after_deadline() -> None:
    node = b.node("gpu-0", "cloud-l4", gpus=0, created=b.START)

    coming = assess_nodes("cloud-l4", [node], b.START + pd.Timedelta(minutes=14), 900)
    failed = assess_nodes("cloud-l4", [node], b.START + pd.Timedelta(minutes=16), 900)

    assert (coming.coming_nodes, coming.failed_nodes) == (1, ())
    assert (failed.coming_nodes, failed.failed_nodes) == (0, ("gpu-0",))
    assert reactive_node_floor(1, failed, pending_gpus=1, gpus_per_node=1) == 2


def test_gate_counts_gpu_less_node_as_coming(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.node("cloud-0", "cloud-h100", gpus=0, created=b.START))
    fake_kube.seed(b.gpu_node_pool("cloud-h100", desired=1))
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(b.hpa("llm", min_replicas=2))
    clock.advance(90)
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=1, replicas=4))

    assert results[0].status == "unchanged"  # no second node for the same demand
    assert results[1].status == "held"
    assert actuator.pool_readiness()["cloud-h100"].coming_nodes == 1


# --- slow but healthy pools are not declared failed ---------------------------------------

SEVENTEEN_MINUTES = 17 * 60


def slow_pool_stats() -> LeadTimeStats:
    return LeadTimeStats(tuple(float(s) for s in range(780, SEVENTEEN_MINUTES + 1, 24)))


def test_lead_time_uses_measured_p95() -> None:
    stats = slow_pool_stats()
    margin_seconds = 180

    lead = effective_seconds(stats, configured_seconds=900) + margin_seconds

    assert stats.quantile(0.95) == SEVENTEEN_MINUTES
    assert lead >= 20 * 60
    assert node_arrival_timeout_seconds(stats, configured_seconds=900) > SEVENTEEN_MINUTES


def seed_pending_raise(kube: FakeKube, api: k8s.ApiClient, stats: LeadTimeStats | None) -> None:
    """A pool that peakcast raised to 2 nodes at START, written by peakcast's own apply."""
    kube.seed(b.gpu_node_pool("cloud-h100", desired=0))
    annotations = {
        PENDING_RAISE_ANNOTATION: json.dumps({"at": b.START.isoformat(), "nodes": 2}),
    }
    if stats is not None:
        annotations[NODE_PROVISIONING_ANNOTATION] = stats.to_annotation()
    body = {
        "apiVersion": GPU_NODE_POOL.api_version,
        "kind": GPU_NODE_POOL.kind,
        "metadata": {
            "name": "cloud-h100",
            "namespace": b.POOL_NAMESPACE,
            "annotations": annotations,
        },
        "spec": {"desiredNodes": 2},
    }
    KubeClient(api, "peakcast", 5).apply(GPU_NODE_POOL, body)
    kube.seed(b.deployment("llm"))
    kube.seed(b.hpa("llm", min_replicas=2))


def test_slow_nodes_within_measured_p95_keep_pool_available(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_pending_raise(fake_kube, kube_api, slow_pool_stats())
    clock.advance(SEVENTEEN_MINUTES)
    settings = b.settings(actuator={"node_arrival_timeout_seconds": 900})
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=2))

    assert results[0].status == "unchanged"
    assert actuator.conditions == []


def test_nodes_past_arrival_timeout_mark_pool_unavailable(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_pending_raise(fake_kube, kube_api, stats=None)
    clock.advance(SEVENTEEN_MINUTES)
    settings = b.settings(actuator={"node_arrival_timeout_seconds": 900})
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)

    actuator.apply(b.decision(pool_nodes=2, replicas=2))

    assert [c.type for c in actuator.conditions] == ["CapacityUnavailable", "UnmetCapacity"]
    assert "did not register within 900 s" in actuator.conditions[0].message


# --- after a capacity error the fallback pool is requested within one cycle ----------------


def two_pool_settings(fallback_max_nodes: int = 4) -> Settings:
    raw = b.settings_dict()
    preferred = raw["pools"][1]
    preferred.update(name="cloud-a", gpus_per_node=1, max_nodes=8)
    preferred["actuator"].update(name="cloud-a", capacity_error_backoff_seconds=1200)
    fallback = json.loads(json.dumps(preferred))
    fallback.update(name="cloud-b", gpus_per_node=4, max_nodes=fallback_max_nodes)
    fallback["actuator"].update(name="cloud-b")
    raw["pools"].append(fallback)
    raw["workloads"][0]["pools"] = ["onprem-h100", "cloud-a", "cloud-b"]
    raw["workloads"][0]["capacity"]["gpus_per_replica"] = 1
    return parse_settings(raw, Path("."))


def seed_capacity_error(kube: FakeKube) -> None:
    pool_a = b.gpu_node_pool("cloud-a", desired=0)
    pool_a["spec"]["crossplane"] = {
        "resourceRefs": [
            {
                "apiVersion": "eks.aws.m.upbound.io/v1beta1",
                "kind": "NodeGroup",
                "name": "cloud-a-x1",
            }
        ]
    }
    kube.seed(pool_a)
    kube.seed(b.gpu_node_pool("cloud-b", desired=0))
    kube.seed(
        {
            "apiVersion": "eks.aws.m.upbound.io/v1beta1",
            "kind": "NodeGroup",
            "metadata": {"name": "cloud-a-x1", "namespace": b.POOL_NAMESPACE},
            "status": {
                "conditions": [
                    {
                        "type": "LastAsyncOperation",
                        "status": "False",
                        "reason": "ApplyFailure",
                        "message": "InsufficientInstanceCapacity: We currently do not have "
                        "sufficient g4dn.xlarge capacity in zones us-east-1a, 1b, 1c",
                    }
                ]
            },
        }
    )
    kube.seed(b.deployment("llm"))
    kube.seed(b.hpa("llm", min_replicas=2))


def pool_desired(kube: FakeKube, name: str) -> int:
    obj = kube.get("platform.peakcast.io/v1alpha1", "gpunodepools", name, b.POOL_NAMESPACE)
    assert obj is not None
    return int(obj["spec"]["desiredNodes"])


def two_pool_decision() -> CycleDecision:
    return CycleDecision(
        b.START,
        (
            FloorDecision("pool", "cloud-a", 2, 0, "forecast", "forecast needs +2 GPUs in 10 min"),
            FloorDecision("pool", "cloud-b", 0, 0, "forecast", "not needed"),
        ),
        (),
    )


def test_capacity_error_moves_request_to_fallback_pool(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_capacity_error(fake_kube)
    actuator = build_actuator(two_pool_settings(), False, api_client=kube_api, clock=clock)

    results = actuator.apply(two_pool_decision())

    assert pool_desired(fake_kube, "cloud-a") == 0
    assert pool_desired(fake_kube, "cloud-b") == 1
    assert "+1 node for pool cloud-a" in results[1].message
    assert [c.type for c in actuator.conditions] == ["CapacityUnavailable"]
    assert "InsufficientInstanceCapacity" in actuator.conditions[0].message


def test_unavailable_pool_stays_held_for_backoff(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_capacity_error(fake_kube)
    actuator = build_actuator(two_pool_settings(), False, api_client=kube_api, clock=clock)
    actuator.apply(two_pool_decision())
    fake_kube.mutate(
        "eks.aws.m.upbound.io/v1beta1",
        "nodegroups",
        "cloud-a-x1",
        b.POOL_NAMESPACE,
        lambda mr: mr.update(status={"conditions": []}),
    )

    clock.advance(600)
    actuator.apply(two_pool_decision())
    held = pool_desired(fake_kube, "cloud-a")
    clock.advance(601)
    actuator.apply(two_pool_decision())

    assert held == 0
    assert pool_desired(fake_kube, "cloud-a") == 2


def test_unmet_capacity_is_reported(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_capacity_error(fake_kube)
    settings = two_pool_settings(fallback_max_nodes=1)
    actuator = build_actuator(settings, False, api_client=kube_api, clock=clock)
    decision = two_pool_decision()
    big = FloorDecision("pool", "cloud-a", 8, 0, "forecast", "forecast needs +8 GPUs")
    both = CycleDecision(b.START, (big, decision.pools[1]), ())

    results = actuator.apply(both)

    assert pool_desired(fake_kube, "cloud-b") == 1
    assert "4 GPUs unmet" in results[0].message
    assert [c.type for c in actuator.conditions] == ["CapacityUnavailable", "UnmetCapacity"]


# --- quota caps the request and the same over-quota request is not resent -----------------


def quota_settings(**actuator: Any) -> Settings:
    raw = b.settings_dict(actuator={"gpu_quota": 1, **actuator})
    raw["pools"][1].update(gpus_per_node=1)
    raw["workloads"][0]["capacity"]["gpus_per_replica"] = 1
    return parse_settings(raw, Path("."))


def test_quota_caps_request_and_raises_condition(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.gpu_node_pool("cloud-h100", desired=0))
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(b.hpa("llm", min_replicas=1))
    actuator = build_actuator(quota_settings(), False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=1))

    assert results[0].new == 1
    assert pool_desired(fake_kube, "cloud-h100") == 1
    assert [c.type for c in actuator.conditions] == ["QuotaLimited", "UnmetCapacity"]
    events = fake_kube.list("events.k8s.io/v1", "events")
    assert [e["reason"] for e in events if e["type"] == "Warning"] == ["QuotaLimited"]


def test_over_quota_request_is_not_resent(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.gpu_node_pool("cloud-h100", desired=0))
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(b.hpa("llm", min_replicas=1))
    actuator = build_actuator(quota_settings(), False, api_client=kube_api, clock=clock)
    actuator.apply(b.decision(pool_nodes=2, replicas=1))
    writes = len(fake_kube.writes())

    for _ in range(3):
        clock.advance(60)
        actuator.apply(b.decision(pool_nodes=2, replicas=1))

    assert len(fake_kube.writes()) == writes
    assert pool_desired(fake_kube, "cloud-h100") == 1


def test_quota_error_from_cloud_caps_at_available_nodes(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.node("cloud-0", "cloud-h100", gpus=1))
    pool = b.gpu_node_pool("cloud-h100", desired=2)
    pool["status"]["conditions"].append(
        {
            "type": "Synced",
            "status": "False",
            "reason": "ReconcileError",
            "message": "QUOTA_EXCEEDED: Quota 'NVIDIA_L4_GPUS' exceeded. Limit: 1.0 in region",
        }
    )
    fake_kube.seed(pool)
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(b.hpa("llm", min_replicas=1))
    actuator = build_actuator(
        quota_settings(gpu_quota=None), False, api_client=kube_api, clock=clock
    )

    actuator.apply(b.decision(pool_nodes=2, replicas=1))

    assert pool_desired(fake_kube, "cloud-h100") == 1
    assert actuator.conditions[0].type == "QuotaLimited"
    assert "QUOTA_EXCEEDED" in actuator.conditions[0].message


def test_timed_out_raise_is_given_up(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_pending_raise(fake_kube, kube_api, stats=None)
    clock.advance(SEVENTEEN_MINUTES)
    settings = b.settings(actuator={"node_arrival_timeout_seconds": 900})
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)

    actuator.apply(b.decision(pool_nodes=2, replicas=2))
    clock.advance(60)
    actuator.apply(b.decision(pool_nodes=2, replicas=2))

    pool = fake_kube.get(
        "platform.peakcast.io/v1alpha1", "gpunodepools", "cloud-h100", b.POOL_NAMESPACE
    )
    assert PENDING_RAISE_ANNOTATION not in pool["metadata"].get("annotations", {})
    assert pool["spec"]["desiredNodes"] == 0  # held at the nodes the pool has
    assert [c.type for c in actuator.conditions] == ["CapacityUnavailable", "UnmetCapacity"]

"""The three node-side modes end to end: official client, fake API server, real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s

from forecaster.errors import ConfigError
from scaler.kube.registry import build_actuator
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube

MODES = ["gpunodepool", "placeholder", "custom_field"]
NODE_SIDE = {
    "gpunodepool": ("platform.peakcast.io/v1alpha1", "gpunodepools", ("spec", "desiredNodes")),
    "placeholder": ("apps/v1", "deployments", ("spec", "replicas")),
    "custom_field": ("example.org/v1", "capacitybuffers", ("spec", "replicas")),
}
OBJECT_NAMES = {
    "gpunodepool": "cloud-h100",
    "placeholder": "cloud-h100-placeholder",
    "custom_field": "cloud-h100",
}


def seed_cluster(kube: FakeKube, mode: str, ready_nodes: int = 2, owner: str | None = None) -> None:
    for index in range(ready_nodes):
        kube.seed(b.node(f"cloud-{index}", "cloud-h100", gpus=8))
    if mode == "gpunodepool":
        kube.seed(b.gpu_node_pool("cloud-h100", desired=1), manager=owner)
    elif mode == "placeholder":
        kube.seed(
            b.deployment("cloud-h100-placeholder", b.POOL_NAMESPACE, replicas=1), manager=owner
        )
    else:
        kube.seed(b.capacity_buffer("cloud-h100", replicas=1), manager=owner)
    kube.seed(b.deployment("llm"))
    kube.seed(b.hpa("llm", min_replicas=2))


def node_side(kube: FakeKube, mode: str) -> dict[str, Any]:
    api_version, plural, _ = NODE_SIDE[mode]
    obj = kube.get(api_version, plural, OBJECT_NAMES[mode], b.POOL_NAMESPACE)
    assert obj is not None
    return obj


def field(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


@pytest.mark.parametrize("mode", MODES)
def test_apply_changes_node_side_and_hpa_floor(
    mode: str, fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, mode)
    actuator = build_actuator(b.settings(mode), dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(
        b.decision(pool_nodes=2, replicas=4, current_nodes=1, current_replicas=2)
    )

    by_kind = {r.floor.kind: r for r in results}
    assert by_kind["pool"].status == "changed", by_kind["pool"].message
    assert by_kind["workload"].status == "changed", by_kind["workload"].message
    assert field(node_side(fake_kube, mode), NODE_SIDE[mode][2]) == 2
    hpa = fake_kube.get("autoscaling/v2", "horizontalpodautoscalers", "llm", b.NAMESPACE)
    assert hpa is not None
    assert hpa["spec"]["minReplicas"] == 4


@pytest.mark.parametrize("mode", MODES)
def test_writes_are_server_side_apply_without_force(
    mode: str, fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, mode)
    actuator = build_actuator(b.settings(mode), dry_run=False, api_client=kube_api, clock=clock)

    actuator.apply(b.decision(pool_nodes=2, replicas=4))

    applies = fake_kube.requests(verb="apply")
    assert {e.resource for e in applies} >= {NODE_SIDE[mode][1], "horizontalpodautoscalers"}
    for entry in applies:
        assert entry.field_manager == "peakcast"
        assert entry.content_type == "application/apply-patch+yaml"
        assert entry.force is False
    assert {e.verb for e in fake_kube.writes()} <= {"apply", "create"}


@pytest.mark.parametrize("mode", MODES)
def test_second_run_changes_nothing(
    mode: str, fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, mode)
    actuator = build_actuator(b.settings(mode), dry_run=False, api_client=kube_api, clock=clock)
    actuator.apply(b.decision(pool_nodes=2, replicas=4))
    versions = {
        "node_side": node_side(fake_kube, mode)["metadata"]["resourceVersion"],
        "hpa": fake_kube.get("autoscaling/v2", "horizontalpodautoscalers", "llm", b.NAMESPACE)[
            "metadata"
        ]["resourceVersion"],
    }
    writes_before = len(fake_kube.writes())

    clock.advance(60)
    again = build_actuator(b.settings(mode), dry_run=False, api_client=kube_api, clock=clock)
    results = again.apply(b.decision(pool_nodes=2, replicas=4))

    assert [r.status for r in results] == ["unchanged", "unchanged"]
    assert len(fake_kube.writes()) == writes_before
    assert node_side(fake_kube, mode)["metadata"]["resourceVersion"] == versions["node_side"]
    hpa = fake_kube.get("autoscaling/v2", "horizontalpodautoscalers", "llm", b.NAMESPACE)
    assert hpa["metadata"]["resourceVersion"] == versions["hpa"]


@pytest.mark.parametrize("mode", MODES)
def test_each_change_records_an_event(
    mode: str, fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, mode)
    actuator = build_actuator(b.settings(mode), dry_run=False, api_client=kube_api, clock=clock)

    actuator.apply(b.decision(pool_nodes=2, replicas=4))

    events = fake_kube.list("events.k8s.io/v1", "events")
    regarding = {(e["regarding"]["kind"], e["regarding"]["name"]): e for e in events}
    kind = node_side(fake_kube, mode)["kind"]
    pool_event = regarding[(kind, OBJECT_NAMES[mode])]
    hpa_event = regarding[("HorizontalPodAutoscaler", "llm")]
    assert len(events) == 2
    assert pool_event["reason"] == "Forecast"
    assert pool_event["type"] == "Normal"
    assert "P90 forecast needs 2 nodes at the peak" in pool_event["note"]
    assert "from 2 to 4" in hpa_event["note"]
    assert hpa_event["reportingController"] == "peakcast.io/peakcast"


@pytest.mark.parametrize("mode", MODES)
def test_field_of_other_manager_is_reported_not_taken(
    mode: str, fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, mode, owner="argocd-controller")
    actuator = build_actuator(b.settings(mode), dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    pool = results[0]
    assert pool.status == "conflict"
    assert "argocd-controller" in pool.message
    assert field(node_side(fake_kube, mode), NODE_SIDE[mode][2]) == 1
    warnings = [e for e in fake_kube.list("events.k8s.io/v1", "events") if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["FieldConflict"]
    assert "argocd-controller" in warnings[0]["note"]
    assert all(not e.force for e in fake_kube.requests(verb="apply"))


def serving_pod(name: str, node_name: str, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": b.NAMESPACE, "labels": {"app": "llm"}},
        "spec": {
            "nodeName": node_name,
            "containers": [
                {"name": "main", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
            ],
        },
        "status": {"phase": "Running"},
    }


def test_placeholder_leaves_out_gpus_serving_pods_use(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, "placeholder", ready_nodes=3)
    fake_kube.seed(serving_pod("llm-a", "cloud-0", gpus=8))
    fake_kube.seed(serving_pod("llm-b", "cloud-1", gpus=4))
    fake_kube.seed(serving_pod("elsewhere", "onprem-0", gpus=8))
    actuator = build_actuator(
        b.settings("placeholder"), dry_run=False, api_client=kube_api, clock=clock
    )

    results = actuator.apply(b.decision(pool_nodes=3, replicas=2))

    # 3 nodes x 8 GPUs = 24; serving pods on the pool use 12; 12 free GPUs = 2 pods of 8.
    assert results[0].new == 2
    assert "serving pods already use 12 GPUs" in results[0].message


def test_custom_field_in_gpus(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, "custom_field")
    settings = b.settings("custom_field", actuator={"unit": "gpus"})
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=2))

    assert results[0].new == 16
    assert field(node_side(fake_kube, "custom_field"), ("spec", "replicas")) == 16


def test_forbidden_events_do_not_fail_the_change(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, "gpunodepool")
    fake_kube.deny("create", "events")
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert [r.status for r in results] == ["changed", "changed"]
    assert fake_kube.list("events.k8s.io/v1", "events") == []


def test_gpunodepool_status_reports_gpu_ready_nodes(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, "gpunodepool", ready_nodes=2)
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)

    actuator.apply(b.decision(pool_nodes=2, replicas=2))

    pool = node_side(fake_kube, "gpunodepool")
    assert pool["status"]["gpuReadyNodes"] == 2
    assert pool["status"]["conditions"][0]["type"] == "Ready"  # the rest of status is kept
    status_applies = [e for e in fake_kube.requests(verb="apply") if e.subresource == "status"]
    assert len(status_applies) == 1


def test_custom_field_rejects_core_resources() -> None:
    with pytest.raises(ConfigError) as caught:
        b.settings("custom_field", actuator={"api_version": "v1", "kind": "ConfigMap"})

    assert "core (v1) resources are not supported" in str(caught.value)

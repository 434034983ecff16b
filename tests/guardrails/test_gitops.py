"""GitOps reverts: a floor field another manager set back is reported, not fought over."""

from __future__ import annotations

import pandas as pd
import pytest
from kubernetes import client as k8s

from scaler.kube.gitops import REVERTED_ANNOTATION, RevertRecord, detect_revert
from scaler.kube.hpa import HPAOwner
from scaler.kube.objects import field_owners
from scaler.kube.registry import build_actuator
from scaler.kube.resources import HPA as HPA_TYPE
from scaler.kube.writer import LAST_CHANGE_ANNOTATION, FloorTarget
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube

HPA = ("autoscaling/v2", "horizontalpodautoscalers", "llm", b.NAMESPACE)
TARGET = FloorTarget(HPA_TYPE, "llm", b.NAMESPACE, HPAOwner.field_path)


def seed(kube: FakeKube) -> None:
    kube.seed(b.gpu_node_pool("cloud-h100", desired=5))
    for index in range(6):
        kube.seed(b.node(f"gpu-{index}", "cloud-h100", 8))
    kube.seed(b.deployment("llm"))
    kube.seed(b.hpa("llm", min_replicas=2))


def revert_with_update(api: k8s.ApiClient) -> None:
    """A client-side apply or ``kubectl edit``: an Update that takes the field."""
    k8s.CustomObjectsApi(api).patch_namespaced_custom_object(
        "autoscaling",
        "v2",
        b.NAMESPACE,
        "horizontalpodautoscalers",
        "llm",
        {"spec": {"minReplicas": 2}},
        field_manager="argocd-controller",
    )


def revert_with_forced_apply(api: k8s.ApiClient) -> None:
    """A GitOps server-side apply with force, as Flux's kustomize-controller sends."""
    body = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "llm", "namespace": b.NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm"},
            "minReplicas": 2,
            "maxReplicas": 64,
        },
    }
    k8s.CustomObjectsApi(api).patch_namespaced_custom_object(
        "autoscaling",
        "v2",
        b.NAMESPACE,
        "horizontalpodautoscalers",
        "llm",
        body,
        field_manager="kustomize-controller",
        force=True,
        _content_type="application/apply-patch+yaml",
    )


@pytest.mark.parametrize(
    ("revert", "manager"),
    [
        pytest.param(revert_with_update, "argocd-controller", id="update"),
        pytest.param(revert_with_forced_apply, "kustomize-controller", id="forced-apply"),
    ],
)
def test_reverted_field_reported_not_fought(
    revert, manager: str, fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)
    first = actuator.apply(b.decision(5, 10, current_nodes=5, current_replicas=2))
    assert {r.floor.kind: r.status for r in first}["workload"] == "changed"

    revert(kube_api)
    clock.advance(60)
    second = actuator.apply(b.decision(5, 10, current_nodes=5, current_replicas=2))

    workload = {r.floor.kind: r for r in second}["workload"]
    assert workload.status == "conflict"
    assert manager in workload.message
    assert "peakcast last wrote 10" in workload.message
    hpa = fake_kube.get(*HPA)
    assert hpa["spec"]["minReplicas"] == 2
    assert "peakcast" not in field_owners(hpa, ("spec", "minReplicas"))
    record = RevertRecord.parse(hpa["metadata"]["annotations"][REVERTED_ANNOTATION])
    assert record is not None
    assert record.managers == (manager,)
    assert record.value == 2
    reverted = [
        e for e in fake_kube.list("events.k8s.io/v1", "events") if e["reason"] == "FloorReverted"
    ]
    assert len(reverted) == 1
    assert reverted[0]["type"] == "Warning"
    assert reverted[0]["regarding"]["name"] == "llm"

    # Within the back-off peakcast neither writes the HPA nor reports again.
    writes = len(fake_kube.writes())
    clock.advance(600)
    third = actuator.apply(b.decision(5, 10, current_nodes=5, current_replicas=2))
    assert {r.floor.kind: r.status for r in third}["workload"] == "conflict"
    hpa_writes = [
        e for e in fake_kube.writes()[writes:] if e.resource == "horizontalpodautoscalers"
    ]
    assert hpa_writes == []
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 2


def test_revert_cleared_once_field_released(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)
    actuator.apply(b.decision(5, 10, current_nodes=5, current_replicas=2))
    revert_with_update(kube_api)
    clock.advance(60)
    actuator.apply(b.decision(5, 10, current_nodes=5, current_replicas=2))

    # The GitOps tool stops managing the field, so it has no owner any more.
    def release(obj: dict) -> None:
        obj["metadata"]["managedFields"] = [
            entry
            for entry in obj["metadata"]["managedFields"]
            if entry["manager"] != "argocd-controller"
        ]

    fake_kube.mutate(*HPA, release)
    clock.advance(60)
    later = actuator.apply(b.decision(5, 10, current_nodes=5, current_replicas=2))

    assert {r.floor.kind: r.status for r in later}["workload"] == "changed"
    hpa = fake_kube.get(*HPA)
    assert hpa["spec"]["minReplicas"] == 10
    assert REVERTED_ANNOTATION not in hpa["metadata"]["annotations"]


def hpa_object(min_replicas: int | None, written: int | None, owners: list[str]) -> dict:
    annotations = {}
    if written is not None:
        annotations[LAST_CHANGE_ANNOTATION] = f'{{"at":"2026-03-02T08:00:00+00:00","to":{written}}}'
    managed = [
        {"manager": owner, "operation": "Update", "fieldsV1": {"f:spec": {"f:minReplicas": {}}}}
        for owner in owners
    ]
    spec = {} if min_replicas is None else {"minReplicas": min_replicas}
    return {"metadata": {"annotations": annotations, "managedFields": managed}, "spec": spec}


@pytest.mark.parametrize(
    ("obj", "reverted"),
    [
        pytest.param(hpa_object(2, None, ["argocd-controller"]), False, id="never-written"),
        pytest.param(hpa_object(10, 10, ["argocd-controller"]), False, id="same-value"),
        pytest.param(hpa_object(2, 10, ["peakcast"]), False, id="still-owned"),
        pytest.param(hpa_object(2, 10, ["argocd-controller"]), True, id="taken-and-changed"),
        pytest.param(hpa_object(None, 10, []), True, id="field-removed"),
        pytest.param(hpa_object(2, 10, []), False, id="released-by-owner"),
    ],
)
def test_detect_revert_cases(obj: dict, reverted: bool) -> None:
    found = detect_revert(obj, TARGET, "peakcast")
    assert (found is not None) is reverted


def test_revert_record_round_trip() -> None:
    record = RevertRecord(pd.Timestamp("2026-03-02T08:00", tz="UTC"), 2, ("argocd-controller",))
    assert RevertRecord.parse(record.to_annotation()) == record
    assert RevertRecord.parse("{not json") is None

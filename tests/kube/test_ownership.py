"""The workload floor goes to whatever owns the replicas, and nowhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from scaler.config_loader import parse_settings
from scaler.kube.registry import build_actuator
from scaler.settings import Settings
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube


def workload_settings(target: dict[str, Any] | None) -> Settings:
    raw = b.settings_dict()
    del raw["pools"][1]["actuator"]
    if target is None:
        del raw["workloads"][0]["target"]
    else:
        raw["workloads"][0]["target"] = {"namespace": b.NAMESPACE, **target}
    return parse_settings(raw, Path("."))


def scaled_object(
    name: str, target: str, minimum: int = 1, maximum: int | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"scaleTargetRef": {"name": target}, "minReplicaCount": minimum}
    if maximum is not None:
        spec["maxReplicaCount"] = maximum
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": b.NAMESPACE},
        "spec": spec,
    }


def inference_service(name: str, minimum: int = 1, maximum: int = 8) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": b.NAMESPACE},
        "spec": {"predictor": {"minReplicas": minimum, "maxReplicas": maximum}},
    }


def apply_floor(
    kube_api: k8s.ApiClient, clock: b.FakeClock, settings: Settings, replicas: int
) -> Any:
    """Apply a decision whose only written floor is the workload's; return its result."""
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    results = actuator.apply(b.decision(pool_nodes=0, replicas=replicas))
    return results[1]


@pytest.mark.parametrize(
    ("target", "plural", "path"),
    [
        pytest.param(
            {"kind": "keda", "name": "llm-so"},
            "scaledobjects",
            ("spec", "minReplicaCount"),
            id="keda",
        ),
        pytest.param(
            {"kind": "kserve", "name": "llm"},
            "inferenceservices",
            ("spec", "predictor", "minReplicas"),
            id="kserve",
        ),
        pytest.param(
            None, "inferenceservices", ("spec", "predictor", "minReplicas"), id="detected-kserve"
        ),
    ],
)
def test_floor_goes_to_configured_or_detected_owner(
    target: dict[str, Any] | None,
    plural: str,
    path: tuple[str, ...],
    fake_kube: FakeKube,
    kube_api: k8s.ApiClient,
    clock: b.FakeClock,
) -> None:
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(scaled_object("llm-so", "llm"))
    fake_kube.seed(inference_service("llm"))
    api_version = {
        "scaledobjects": "keda.sh/v1alpha1",
        "inferenceservices": "serving.kserve.io/v1beta1",
    }

    result = apply_floor(kube_api, clock, workload_settings(target), replicas=3)

    assert result.status == "changed", result.message
    obj = fake_kube.get(
        api_version[plural], plural, "llm-so" if plural == "scaledobjects" else "llm", b.NAMESPACE
    )
    value: Any = obj
    for key in path:
        value = value[key]
    assert value == 3
    deployment = fake_kube.get("apps/v1", "deployments", "llm", b.NAMESPACE)
    assert "replicas" not in deployment["spec"]


def test_detection_prefers_scaled_object_over_its_hpa(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(scaled_object("llm-so", "llm"))
    keda_hpa = b.hpa("keda-hpa-llm-so", min_replicas=1, target="llm")
    keda_hpa["metadata"]["ownerReferences"] = [{"kind": "ScaledObject", "name": "llm-so"}]
    fake_kube.seed(keda_hpa)

    result = apply_floor(kube_api, clock, workload_settings(None), replicas=5)

    assert result.target == "ScaledObject serving/llm-so"
    assert result.field_path == "spec.minReplicaCount"


def test_detection_finds_hpa_then_deployment(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.deployment("llm", replicas=1))
    fake_kube.seed(b.hpa("llm-hpa", min_replicas=1, target="llm"))

    via_hpa = apply_floor(kube_api, clock, workload_settings(None), replicas=2)
    fake_kube.objects.pop(("autoscaling", "horizontalpodautoscalers", b.NAMESPACE, "llm-hpa"))
    via_deployment = apply_floor(kube_api, clock, workload_settings(None), replicas=2)

    assert via_hpa.target == "HorizontalPodAutoscaler serving/llm-hpa"
    assert via_deployment.target == "Deployment serving/llm"
    assert via_deployment.status == "changed"


def test_deployment_owned_by_hpa_is_rejected(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    fake_kube.seed(b.deployment("llm", replicas=1))
    fake_kube.seed(b.hpa("llm-hpa", min_replicas=1, target="llm"))

    result = apply_floor(
        kube_api, clock, workload_settings({"kind": "deployment", "name": "llm"}), 4
    )

    assert result.status == "conflict"
    assert "owned by HorizontalPodAutoscaler serving/llm-hpa" in result.message
    assert fake_kube.get("apps/v1", "deployments", "llm", b.NAMESPACE)["spec"]["replicas"] == 1
    assert fake_kube.writes() == []


def test_hpa_managed_by_keda_is_rejected(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    keda_hpa = b.hpa("keda-hpa-llm", min_replicas=1, target="llm")
    keda_hpa["metadata"]["ownerReferences"] = [{"kind": "ScaledObject", "name": "llm"}]
    fake_kube.seed(keda_hpa)

    result = apply_floor(
        kube_api, clock, workload_settings({"kind": "hpa", "name": "keda-hpa-llm"}), 4
    )

    assert result.status == "conflict"
    assert "managed by ScaledObject serving/llm" in result.message


def test_missing_target_fails_with_name(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    result = apply_floor(kube_api, clock, workload_settings({"kind": "hpa", "name": "nope"}), 4)

    assert result.status == "conflict"
    assert "HorizontalPodAutoscaler serving/nope not found" in result.message


@pytest.mark.parametrize(
    ("obj", "settings_target", "expected", "note"),
    [
        pytest.param(
            b.hpa("llm", 2, max_replicas=6),
            {"kind": "hpa", "name": "llm"},
            6,
            "maxReplicas 6",
            id="hpa",
        ),
        pytest.param(
            scaled_object("llm", "llm", 1, maximum=5),
            {"kind": "keda", "name": "llm"},
            5,
            "maxReplicaCount 5",
            id="keda",
        ),
        pytest.param(
            inference_service("llm", 1, maximum=7),
            {"kind": "kserve", "name": "llm"},
            7,
            "maxReplicas 7",
            id="kserve",
        ),
    ],
)
def test_floor_is_capped_at_owner_maximum(
    obj: dict[str, Any],
    settings_target: dict[str, Any],
    expected: int,
    note: str,
    fake_kube: FakeKube,
    kube_api: k8s.ApiClient,
    clock: b.FakeClock,
) -> None:
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(obj)

    result = apply_floor(kube_api, clock, workload_settings(settings_target), replicas=9)

    assert result.new == expected
    assert note in result.message

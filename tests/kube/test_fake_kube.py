"""The fake API server responds to the official client as a real API server would."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube

APPLY = "application/apply-patch+yaml"


def lease(name: str, holder: str) -> dict[str, object]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "peakcast"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
    }


def test_lease_create_get_replace(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    api = k8s.CoordinationV1Api(kube_api)
    api.create_namespaced_lease("peakcast", lease("leader", "pod-a"))

    current = api.read_namespaced_lease("leader", "peakcast")
    current.spec.holder_identity = "pod-b"
    replaced = api.replace_namespaced_lease("leader", "peakcast", current)

    assert replaced.spec.holder_identity == "pod-b"
    assert int(replaced.metadata.resource_version) > int(current.metadata.resource_version)


def test_stale_resource_version_is_conflict(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    api = k8s.CoordinationV1Api(kube_api)
    api.create_namespaced_lease("peakcast", lease("leader", "pod-a"))
    stale = api.read_namespaced_lease("leader", "peakcast")
    fresh = api.read_namespaced_lease("leader", "peakcast")
    fresh.spec.holder_identity = "pod-b"
    api.replace_namespaced_lease("leader", "peakcast", fresh)

    with pytest.raises(k8s.ApiException) as caught:
        api.replace_namespaced_lease("leader", "peakcast", stale)

    assert caught.value.status == 409


def test_scale_subresource_rejects_negative(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    fake_kube.seed(b.gpu_node_pool("pool", desired=1))
    custom = k8s.CustomObjectsApi(kube_api)
    args = ("platform.peakcast.io", "v1alpha1", b.POOL_NAMESPACE, "gpunodepools", "pool")

    custom.patch_namespaced_custom_object_scale(*args, {"spec": {"replicas": 3}})
    scale = custom.get_namespaced_custom_object_scale(*args)
    with pytest.raises(k8s.ApiException) as caught:
        custom.patch_namespaced_custom_object_scale(*args, {"spec": {"replicas": -1}})

    assert scale["spec"]["replicas"] == 3
    assert caught.value.status == 422


def test_deployment_scale_through_typed_api(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    fake_kube.seed(b.deployment("llm", replicas=1))
    apps = k8s.AppsV1Api(kube_api)

    apps.patch_namespaced_deployment_scale("llm", b.NAMESPACE, {"spec": {"replicas": 4}})

    assert fake_kube.get("apps/v1", "deployments", "llm", b.NAMESPACE)["spec"]["replicas"] == 4
    assert (
        fake_kube.requests(verb="patch")[0].content_type == "application/strategic-merge-patch+json"
    )


def test_denied_verb_is_forbidden(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    fake_kube.seed(b.hpa("llm"))
    fake_kube.deny("apply", "horizontalpodautoscalers")
    custom = k8s.CustomObjectsApi(kube_api)
    body = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "llm", "namespace": b.NAMESPACE},
        "spec": {"minReplicas": 3},
    }

    with pytest.raises(k8s.ApiException) as caught:
        custom.patch_namespaced_custom_object(
            "autoscaling",
            "v2",
            b.NAMESPACE,
            "horizontalpodautoscalers",
            "llm",
            body,
            field_manager="peakcast",
            _content_type=APPLY,
        )

    assert caught.value.status == 403


def test_apply_conflict_unless_forced(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    fake_kube.seed(b.hpa("llm", min_replicas=2), manager="helm")
    custom = k8s.CustomObjectsApi(kube_api)
    body = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "llm", "namespace": b.NAMESPACE},
        "spec": {"minReplicas": 3},
    }
    args = ("autoscaling", "v2", b.NAMESPACE, "horizontalpodautoscalers", "llm", body)

    with pytest.raises(k8s.ApiException) as caught:
        custom.patch_namespaced_custom_object(*args, field_manager="other", _content_type=APPLY)
    forced = custom.patch_namespaced_custom_object(
        *args, field_manager="other", force=True, _content_type=APPLY
    )

    assert caught.value.status == 409
    assert 'conflict with \\"helm\\"' in str(caught.value.body)
    assert forced["spec"]["minReplicas"] == 3
    managers = {e["manager"]: e["fieldsV1"] for e in forced["metadata"]["managedFields"]}
    assert "f:minReplicas" not in managers["helm"]["f:spec"]


def test_equal_value_is_shared_not_conflict(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    fake_kube.seed(b.hpa("llm", min_replicas=2), manager="helm")
    custom = k8s.CustomObjectsApi(kube_api)
    body = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "llm", "namespace": b.NAMESPACE},
        "spec": {"minReplicas": 2},
    }

    shared = custom.patch_namespaced_custom_object(
        "autoscaling",
        "v2",
        b.NAMESPACE,
        "horizontalpodautoscalers",
        "llm",
        body,
        field_manager="peakcast",
        _content_type=APPLY,
    )

    assert {e["manager"] for e in shared["metadata"]["managedFields"]} == {"helm", "peakcast"}


def test_label_and_field_selectors(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    fake_kube.seed(b.node("a", "pool-1", 8))
    fake_kube.seed(b.node("b", "pool-2", 8))
    core = k8s.CoreV1Api(kube_api)

    selected = core.list_node(label_selector="peakcast.io/pool in (pool-2, pool-3)")
    excluded = core.list_node(label_selector="peakcast.io/pool!=pool-2")
    by_field = core.list_node(field_selector="metadata.name=a")

    assert [n.metadata.name for n in selected.items] == ["b"]
    assert [n.metadata.name for n in excluded.items] == ["a"]
    assert [n.metadata.name for n in by_field.items] == ["a"]


def test_version_and_discovery(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    version = k8s.VersionApi(kube_api).get_code()
    groups = k8s.ApisApi(kube_api).get_api_versions()
    resources = k8s.CustomObjectsApi(kube_api).get_api_resources("platform.peakcast.io", "v1alpha1")

    assert version.git_version.startswith("v1.33")
    assert "platform.peakcast.io" in {g.name for g in groups.groups}
    assert {"gpunodepools", "gpunodepools/scale"} <= {r.name for r in resources.resources}


def test_injected_failure_then_recovery(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    fake_kube.seed(b.hpa("llm"))
    fake_kube.fail_next(1)
    autoscaling = k8s.AutoscalingV2Api(kube_api)

    with pytest.raises(k8s.ApiException) as caught:
        autoscaling.read_namespaced_horizontal_pod_autoscaler("llm", b.NAMESPACE)
    recovered = autoscaling.read_namespaced_horizontal_pod_autoscaler("llm", b.NAMESPACE)

    assert caught.value.status == 500
    assert recovered.spec.max_replicas == 64

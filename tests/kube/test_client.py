"""Client construction, error translation, faults and dry-run, seen from the actuator."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.config import kube_config

from forecaster.errors import ConfigError, TransientError
from scaler.kube.client import ForbiddenError, KubeClient, build_api_client
from scaler.kube.registry import build_actuator
from scaler.kube.resources import HPA
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube


def write_kubeconfig(path: Path, server: str, context: str = "fake") -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": context, "context": {"cluster": "fake", "user": "tester"}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_client_from_kubeconfig_context(fake_kube: FakeKube, tmp_path: Path) -> None:
    fake_kube.seed(b.hpa("llm"))
    config = write_kubeconfig(tmp_path / "kubeconfig", fake_kube.url, context="lab")
    api = build_api_client(kubeconfig_path=config, context="lab")
    try:
        hpa = KubeClient(api, "peakcast", 5).get(HPA, "llm", b.NAMESPACE)
    finally:
        api.close()

    assert hpa is not None
    assert hpa["spec"]["maxReplicas"] == 64


def test_missing_kubeconfig_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build_api_client(kubeconfig_path=tmp_path / "absent")

    assert caught.value.key == "kubernetes.kubeconfig_path"


def test_timeout_is_transient(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    fake_kube.seed(b.hpa("llm"))
    fake_kube.delay_next(4, seconds=1.0)  # urllib3 retries an idempotent read 3 times

    with pytest.raises(TransientError):
        KubeClient(kube_api, "peakcast", 0.2).get(HPA, "llm", b.NAMESPACE)


def test_forbidden_apply_is_reported(fake_kube: FakeKube, kube_api: k8s.ApiClient) -> None:
    fake_kube.seed(b.hpa("llm"))
    fake_kube.deny("apply", "horizontalpodautoscalers")
    body = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "llm", "namespace": b.NAMESPACE},
        "spec": {"minReplicas": 3},
    }

    with pytest.raises(ForbiddenError):
        KubeClient(kube_api, "peakcast", 5).apply(HPA, body)


def seed(kube: FakeKube) -> None:
    kube.seed(b.node("cloud-0", "cloud-h100", gpus=8))
    kube.seed(b.node("cloud-1", "cloud-h100", gpus=8))
    kube.seed(b.gpu_node_pool("cloud-h100", desired=1))
    kube.seed(b.deployment("llm"))
    kube.seed(b.hpa("llm", min_replicas=2))


def test_rejected_floor_retried_next_cycle(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)
    fake_kube.deny("apply", "horizontalpodautoscalers")

    first = actuator.apply(b.decision(pool_nodes=2, replicas=4))
    fake_kube.faults.denied.clear()
    clock.advance(60)
    second = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert [r.status for r in first] == ["changed", "failed"]
    assert "HTTP 403" in first[1].message
    assert [r.status for r in second] == ["unchanged", "changed"]


def test_unreachable_api_fails_floors_without_raising(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    fake_kube.fail_next(50, code=503)
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert [r.status for r in results] == ["failed", "failed"]
    assert "HTTP 503" in results[0].message


def test_dry_run_stores_nothing(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    actuator = build_actuator(b.settings(), dry_run=True, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert [r.status for r in results] == ["dry_run", "dry_run"]
    assert all(e.dry_run for e in fake_kube.writes())
    assert fake_kube.list("events.k8s.io/v1", "events") == []
    pool = fake_kube.get(
        "platform.peakcast.io/v1alpha1", "gpunodepools", "cloud-h100", b.POOL_NAMESPACE
    )
    assert pool["spec"]["desiredNodes"] == 1


def test_missing_cluster_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client reads $KUBECONFIG and ~ once, at import, into its default location.
    default = Path(os.path.expanduser(kube_config.KUBE_CONFIG_DEFAULT_LOCATION))
    if default.exists():
        pytest.skip(f"this machine has a kubeconfig at {default}")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    with pytest.raises(ConfigError) as raised:
        build_api_client()

    assert raised.value.value == "unset"
    assert "pass --kubeconfig PATH or set kubernetes.kubeconfig_path" in raised.value.allowed

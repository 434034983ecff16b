"""Several clusters: GPUNodePools in the management cluster, HPAs and nodes in workload clusters."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from forecaster.errors import ConfigError
from scaler.config_loader import parse_settings
from scaler.core.decision import CycleDecision, FloorDecision
from scaler.kube.clusters import build_cluster_clients
from scaler.kube.expiry import expire_floors
from scaler.kube.multi_cluster import MultiClusterActuator
from scaler.kube.registry import build_actuator
from scaler.settings import Settings
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube, running_fake_kube

POOL_TYPE = ("platform.peakcast.io/v1alpha1", "gpunodepools")
HPA_TYPE = ("autoscaling/v2", "horizontalpodautoscalers")


@pytest.fixture
def fleet() -> Iterator[dict[str, FakeKube]]:
    """Three fake API servers: the management cluster and two workload clusters."""
    with running_fake_kube() as mgmt, running_fake_kube() as eu, running_fake_kube() as us:
        yield {"mgmt": mgmt, "serving-eu": eu, "serving-us": us}


def burst_pool(name: str, cluster: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "burst",
        "cluster": cluster,
        "gpus_per_node": 8,
        "max_nodes": 12,
        "baseline_nodes": 0,
        "actuator": {"mode": "gpunodepool", "name": name, "namespace": b.POOL_NAMESPACE},
    }


def workload(name: str, cluster: str, pool: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": b.NAMESPACE,
        "cluster": cluster,
        "demand": {
            "source": "trace",
            "series": 'rate(requests_total{cluster="$cluster"}[5m])',
            "unit": "requests_per_second",
        },
        "capacity": {"throughput_per_replica": 25.0, "gpus_per_replica": 2, "max_replicas": 64},
        "pools": [pool],
        "target": {"kind": "hpa", "name": "chat", "namespace": b.NAMESPACE},
    }


def fleet_dict(urls: dict[str, str]) -> dict[str, Any]:
    return {
        "version": 1,
        "dry_run": False,
        "sources": {"trace": {"kind": "csv", "path": "trace.csv"}},
        "clusters": [
            {"name": "mgmt", "role": "management", "host": urls["mgmt"]},
            {
                "name": "serving-eu",
                "role": "workload",
                "host": urls["serving-eu"],
                "thanos_label_value": "eu-1",
            },
            {"name": "serving-us", "role": "workload", "host": urls["serving-us"]},
        ],
        "pools": [burst_pool("eu-h100", "serving-eu"), burst_pool("us-h100", "serving-us")],
        "workloads": [
            workload("chat-eu", "serving-eu", "eu-h100"),
            workload("chat-us", "serving-us", "us-h100"),
        ],
    }


def fleet_settings(fleet: dict[str, FakeKube]) -> Settings:
    return parse_settings(fleet_dict({name: kube.url for name, kube in fleet.items()}), Path("."))


def seed(fleet: dict[str, FakeKube]) -> None:
    for cluster, pool in (("serving-eu", "eu-h100"), ("serving-us", "us-h100")):
        fleet["mgmt"].seed(b.gpu_node_pool(pool, desired=0))
        serving = fleet[cluster]
        for index in range(4):
            serving.seed(b.node(f"{pool}-{index}", pool, 8))
        serving.seed(b.deployment("chat"))
        serving.seed(b.hpa("chat", min_replicas=2))


def decision(eu: tuple[int, int], us: tuple[int, int]) -> CycleDecision:
    def floor(kind: str, name: str, value: int) -> FloorDecision:
        return FloorDecision(kind, name, value, None, "forecast", f"{name} needs {value}")  # type: ignore[arg-type]

    return CycleDecision(
        b.START,
        (floor("pool", "eu-h100", eu[0]), floor("pool", "us-h100", us[0])),
        (floor("workload", "chat-eu", eu[1]), floor("workload", "chat-us", us[1])),
    )


def test_floors_split_across_clusters(fleet: dict[str, FakeKube], clock: b.FakeClock) -> None:
    seed(fleet)
    actuator = build_actuator(fleet_settings(fleet), dry_run=False, clock=clock)
    assert isinstance(actuator, MultiClusterActuator)

    results = actuator.apply(decision(eu=(3, 10), us=(2, 6)))

    assert {r.status for r in results} == {"changed"}
    mgmt, eu, us = fleet["mgmt"], fleet["serving-eu"], fleet["serving-us"]
    assert mgmt.get(*POOL_TYPE, "eu-h100", b.POOL_NAMESPACE)["spec"]["desiredNodes"] == 3
    assert mgmt.get(*POOL_TYPE, "us-h100", b.POOL_NAMESPACE)["spec"]["desiredNodes"] == 2
    assert eu.get(*HPA_TYPE, "chat", b.NAMESPACE)["spec"]["minReplicas"] == 10
    assert us.get(*HPA_TYPE, "chat", b.NAMESPACE)["spec"]["minReplicas"] == 6
    # Each write went to its own cluster and nowhere else.
    assert {e.resource for e in mgmt.requests(verb="apply")} == {"gpunodepools"}
    assert {e.resource for e in eu.requests(verb="apply")} == {"horizontalpodautoscalers"}
    assert {e.resource for e in us.requests(verb="apply")} == {"horizontalpodautoscalers"}
    # Nodes are read where they join, not in the management cluster.
    assert mgmt.requests(resource="nodes") == []
    assert eu.requests(resource="nodes")
    # Events are created next to the object they are about.
    mgmt_events = {e["regarding"]["kind"] for e in mgmt.list("events.k8s.io/v1", "events")}
    eu_events = {e["regarding"]["kind"] for e in eu.list("events.k8s.io/v1", "events")}
    assert mgmt_events == {"GPUNodePool"}
    assert eu_events == {"HorizontalPodAutoscaler"}


def test_current_floors_read_from_every_cluster(
    fleet: dict[str, FakeKube], clock: b.FakeClock
) -> None:
    seed(fleet)
    actuator = build_actuator(fleet_settings(fleet), dry_run=False, clock=clock)
    actuator.apply(decision(eu=(3, 10), us=(2, 6)))

    floors = actuator.current_floors()

    assert floors == {
        ("pool", "eu-h100"): 3,
        ("pool", "us-h100"): 2,
        ("workload", "chat-eu"): 10,
        ("workload", "chat-us"): 6,
    }


def test_expiry_across_clusters(fleet: dict[str, FakeKube], clock: b.FakeClock) -> None:
    seed(fleet)
    settings = fleet_settings(fleet)
    build_actuator(settings, dry_run=False, clock=clock).apply(decision(eu=(3, 10), us=(2, 6)))

    results = expire_floors(
        build_cluster_clients(settings), settings, clock() + pd.Timedelta(hours=2)
    )

    assert {r.status for r in results} == {"expired"}
    assert fleet["mgmt"].get(*POOL_TYPE, "eu-h100", b.POOL_NAMESPACE)["spec"]["desiredNodes"] == 0
    assert fleet["serving-us"].get(*HPA_TYPE, "chat", b.NAMESPACE)["spec"]["minReplicas"] == 1


def test_cluster_label_substituted_in_queries() -> None:
    urls = {"mgmt": "http://127.0.0.1:1", "serving-eu": "http://127.0.0.1:2"}
    urls["serving-us"] = "http://127.0.0.1:3"
    settings = parse_settings(fleet_dict(urls), Path("."))
    assert settings.workload("chat-eu").demand.series == 'rate(requests_total{cluster="eu-1"}[5m])'
    assert settings.workload("chat-us").demand.series == (
        'rate(requests_total{cluster="serving-us"}[5m])'
    )


def test_workload_and_pool_in_different_clusters_rejected() -> None:
    raw = fleet_dict({"mgmt": "", "serving-eu": "", "serving-us": ""})
    raw["workloads"][0]["pools"] = ["us-h100"]
    with pytest.raises(ConfigError, match="runs in cluster 'serving-eu' but its pool 'us-h100'"):
        parse_settings(raw, Path("."))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda raw: raw["clusters"].append({"name": "mgmt2", "role": "management"}),
            "at most one cluster may have role 'management'",
            id="two-management",
        ),
        pytest.param(
            lambda raw: raw["pools"][0].update(cluster="mgmt"),
            "must name a cluster with role 'workload'",
            id="pool-in-management",
        ),
        pytest.param(
            lambda raw: raw["workloads"][0].pop("cluster"),
            "set 'cluster', because several workload clusters",
            id="workload-without-cluster",
        ),
    ],
)
def test_invalid_cluster_config_rejected(change: Any, message: str) -> None:
    raw = copy.deepcopy(fleet_dict({"mgmt": "", "serving-eu": "", "serving-us": ""}))
    change(raw)
    with pytest.raises(ConfigError, match=message):
        parse_settings(raw, Path("."))


def test_single_cluster_config_unchanged(clock: b.FakeClock) -> None:
    settings = b.settings()
    assert settings.clusters == []
    assert settings.pool("cloud-h100").cluster is None

"""Gates hold a workload floor until the capacity is really there, then release it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from scaler.config_loader import parse_settings
from scaler.kube.registry import build_actuator
from scaler.settings import Settings
from tests.kube import builders as b
from tests.kube.prom_stub import PromStub, running_prom_stub, vector
from tests.servers.fake_kube import FakeKube


def seed(kube: FakeKube, gpus_per_node: int) -> None:
    """Two fresh nodes of the burst pool, registered but with ``gpus_per_node`` GPUs."""
    for index in range(2):
        kube.seed(b.node(f"cloud-{index}", "cloud-h100", gpus=gpus_per_node, created=b.START))
    kube.seed(b.gpu_node_pool("cloud-h100", desired=0))
    kube.seed(b.deployment("llm"))
    kube.seed(b.hpa("llm", min_replicas=2))


def hpa_floor(kube: FakeKube) -> int:
    hpa = kube.get("autoscaling/v2", "horizontalpodautoscalers", "llm", b.NAMESPACE)
    assert hpa is not None
    return int(hpa["spec"]["minReplicas"])


def warning_reasons(kube: FakeKube) -> list[str]:
    events = kube.list("events.k8s.io/v1", "events")
    return [e["reason"] for e in events if e["type"] == "Warning"]


@pytest.fixture
def prom() -> Iterator[PromStub]:
    with running_prom_stub() as stub:
        yield stub


def test_pool_ready_holds_until_gpus_allocatable(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube, gpus_per_node=0)
    clock.advance(120)
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)

    first = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert [r.status for r in first] == ["changed", "held"]
    assert "0 of 2 nodes are GPU-ready (2 coming" in first[1].message
    assert hpa_floor(fake_kube) == 2
    assert warning_reasons(fake_kube) == ["GateHeld"]
    pool = fake_kube.get(
        "platform.peakcast.io/v1alpha1", "gpunodepools", "cloud-h100", b.POOL_NAMESPACE
    )
    assert pool["spec"]["desiredNodes"] == 2  # the node side is not rolled back

    fake_kube.set_node_gpus("cloud-0", 8)
    fake_kube.set_node_gpus("cloud-1", 8)
    clock.advance(60)
    second = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert [r.status for r in second] == ["unchanged", "changed"]
    assert hpa_floor(fake_kube) == 4


def test_pool_ready_waits_for_xr_ready(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube, gpus_per_node=8)
    fake_kube.seed(b.gpu_node_pool("cloud-h100", desired=2, ready=False))
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert results[1].status == "held"
    assert "not Ready/Synced" in results[1].message


def test_gate_does_not_run_when_lowering(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube, gpus_per_node=0)
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=1))

    assert results[1].status == "changed"
    assert hpa_floor(fake_kube) == 1


def gate_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.INFO and record.getMessage().startswith("Gate ")
    ]


def test_gate_verdict_logged_once_per_evaluation(
    fake_kube: FakeKube,
    kube_api: k8s.ApiClient,
    clock: b.FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed(fake_kube, gpus_per_node=0)
    clock.advance(120)
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)

    with caplog.at_level(logging.INFO, logger="scaler"):
        actuator.apply(b.decision(pool_nodes=2, replicas=4))
        fake_kube.set_node_gpus("cloud-0", 8)
        fake_kube.set_node_gpus("cloud-1", 8)
        clock.advance(60)
        actuator.apply(b.decision(pool_nodes=2, replicas=4))

    held, passed = gate_records(caplog)
    assert held.startswith("Gate pool_ready held the raise of workload serving/llm from 2 to 4")
    assert "0 of 2 nodes are GPU-ready" in held
    assert passed.startswith("Gate pool_ready passed the raise of workload serving/llm")


def test_pool_without_actuator_named_and_gate_passes(
    fake_kube: FakeKube,
    kube_api: k8s.ApiClient,
    clock: b.FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(b.hpa("llm", min_replicas=2))
    raw = b.settings_dict()
    del raw["pools"][1]["actuator"]
    settings = parse_settings(raw, Path("."))
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)

    with caplog.at_level(logging.INFO, logger="scaler"):
        pool, workload = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert (pool.status, pool.target, pool.message) == (
        "unchanged",
        "pool cloud-h100",
        "not written",
    )
    assert pool.field_path == "(no actuator configured)"
    assert workload.status == "changed"
    [passed] = gate_records(caplog)
    assert "passed" in passed
    assert "no pool of this workload has an actuator, so the gate cannot check GPU" in passed


def test_pool_ready_holds_when_pool_unreadable(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube, gpus_per_node=8)
    fake_kube.deny("get", "gpunodepools")
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)

    pool, workload = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert (pool.status, pool.target) == ("failed", "pool cloud-h100")
    assert workload.status == "held"
    assert "pool cloud-h100: readiness could not be read" in workload.message
    assert hpa_floor(fake_kube) == 2


PROMQL_GATE = {
    "kind": "promql",
    "source": "thanos",
    "query": "sum(kube_node_status_allocatable{resource='nvidia_com_gpu'})",
    "operator": ">=",
    "threshold": 16,
}


def promql_settings(url: str) -> Settings:
    raw = b.settings_dict(gate=PROMQL_GATE)
    raw["sources"]["thanos"]["url"] = url
    return parse_settings(raw, Path("."))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(vector(8), "8 >= 16 not met", id="below-objective"),
        pytest.param(vector(), "exactly one sample, got 0", id="empty-result-is-missing"),
        pytest.param(vector(20, 20), "exactly one sample, got 2", id="several-series"),
        pytest.param({**vector(20), "warnings": ["store down"]}, "partial", id="thanos-warnings"),
        pytest.param({"status": "error", "error": "bad query"}, "bad query", id="query-error"),
    ],
)
def test_promql_holds_unless_objective_met(
    payload: dict[str, Any],
    reason: str,
    prom: PromStub,
    fake_kube: FakeKube,
    kube_api: k8s.ApiClient,
    clock: b.FakeClock,
) -> None:
    seed(fake_kube, gpus_per_node=8)
    prom.payload = payload
    actuator = build_actuator(promql_settings(prom.url), False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert results[1].status == "held"
    assert reason in results[1].message
    assert hpa_floor(fake_kube) == 2


def test_promql_releases_once_objective_met(
    prom: PromStub, fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube, gpus_per_node=8)
    actuator = build_actuator(promql_settings(prom.url), False, api_client=kube_api, clock=clock)
    prom.payload = vector(8)
    assert actuator.apply(b.decision(pool_nodes=2, replicas=4))[1].status == "held"

    prom.payload = vector(16)
    clock.advance(60)
    results = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert results[1].status == "changed"
    assert hpa_floor(fake_kube) == 4
    sent = prom.requests[-1]
    assert sent["query"] == PROMQL_GATE["query"]
    assert sent["partial_response"] == "false"
    assert float(sent["time"]) == clock.now.timestamp()


KEPTN_GATE = {
    "kind": "keptn",
    "analysis_definition": "gpu-capacity-ready",
    "timeout_seconds": 10,
    "poll_interval_seconds": 1,
}


def keptn_operator(kube: FakeKube, verdicts: list[bool]) -> None:
    """Play the Keptn metrics operator: complete each new Analysis with the next verdict."""

    def complete(analysis: dict[str, Any]) -> None:
        analysis["status"] = {"state": "Completed", "pass": verdicts.pop(0), "warning": False}

    kube.on_create("analyses", complete)


def test_keptn_holds_on_failed_analysis_then_releases(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube, gpus_per_node=8)
    keptn_operator(fake_kube, [False, True])
    settings = b.settings(gate=KEPTN_GATE)
    actuator = build_actuator(
        settings, False, api_client=kube_api, clock=clock, sleep=lambda s: None
    )

    first = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert first[1].status == "held"
    assert "failed" in first[1].message
    analyses = fake_kube.list("metrics.keptn.sh/v1", "analyses", b.NAMESPACE)
    assert len(analyses) == 1
    spec = analyses[0]["spec"]
    assert spec["analysisDefinition"] == {"name": "gpu-capacity-ready", "namespace": b.NAMESPACE}
    assert spec["args"]["workload"] == "llm"
    assert spec["timeframe"] == {"recent": "300s"}

    clock.advance(300)  # the next timeframe window starts a new Analysis
    second = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert second[1].status == "changed", second[1].message
    assert hpa_floor(fake_kube) == 4
    remaining = fake_kube.list("metrics.keptn.sh/v1", "analyses", b.NAMESPACE)
    assert len(remaining) == 1  # the completed Analysis of the older window was deleted


def test_keptn_waits_for_progressing_analysis(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube, gpus_per_node=8)
    fake_kube.on_create("analyses", lambda a: a.update(status={"state": "Progressing"}))
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:
            [analysis] = fake_kube.list("metrics.keptn.sh/v1", "analyses", b.NAMESPACE)
            fake_kube.mutate(
                "metrics.keptn.sh/v1",
                "analyses",
                analysis["metadata"]["name"],
                b.NAMESPACE,
                lambda a: a.update(status={"state": "Completed", "pass": True}),
            )

    settings = b.settings(gate=KEPTN_GATE)
    actuator = build_actuator(settings, False, api_client=kube_api, clock=clock, sleep=sleep)

    results = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert results[1].status == "changed"
    assert polls == [1, 1, 1]


def test_keptn_times_out_and_holds(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube, gpus_per_node=8)
    ticks = iter(range(100))
    settings = b.settings(gate=KEPTN_GATE)
    actuator = build_actuator(
        settings,
        False,
        api_client=kube_api,
        clock=clock,
        sleep=lambda s: None,
        monotonic=lambda: float(next(ticks) * 5),
    )

    results = actuator.apply(b.decision(pool_nodes=2, replicas=4))

    assert results[1].status == "held"
    assert "is Pending; waiting" in results[1].message

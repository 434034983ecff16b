"""Pending GPU pods raise the pool floor at once, against the fake Kubernetes API server."""

from __future__ import annotations

import pandas as pd
from kubernetes import client as k8s

from scaler.core.decision import RULE_REACTIVE, CycleDecision, FloorDecision
from scaler.fastloop import FastLoop
from scaler.kube.client import build_api_client
from scaler.kube.registry import build_actuator, build_kube_client
from scaler.settings import Settings
from scaler.signals.wiring import build_fast_loop
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube
from tests.servers.prometheus import free_port
from tests.signals import builders as sb

PENDING = {"pending_gpu_pods": {"hysteresis": {"hold_seconds": 30, "min_samples": 2}}}
POOL_API = ("platform.peakcast.io/v1alpha1", "gpunodepools", sb.POOL, b.POOL_NAMESPACE)


def seed_cluster(kube: FakeKube, desired: int = 1) -> None:
    kube.seed(b.node("cloud-0", sb.POOL, gpus=8))
    kube.seed(b.gpu_node_pool(sb.POOL, desired=desired))
    kube.seed(b.deployment("llm"))
    kube.seed(b.hpa("llm", min_replicas=2))


def fast_loop(settings: Settings, api: k8s.ApiClient, clock: b.FakeClock) -> FastLoop:
    actuator = build_actuator(settings, dry_run=False, api_client=api, clock=clock)
    kube = build_kube_client(settings.kubernetes, api)
    return build_fast_loop(settings, actuator, kube=kube, forecasts=lambda name: None)


def desired_nodes(kube: FakeKube) -> int:
    pool = kube.get(*POOL_API)
    assert pool is not None
    return int(pool["spec"]["desiredNodes"])


def forecast_decision(loop: FastLoop, at: pd.Timestamp, nodes: int, current: int) -> CycleDecision:
    """A planning cycle's decision, lifted to the held reactive floor as ``LiveCycle`` does."""
    floor = FloorDecision("pool", sb.POOL, nodes, current, "forecast", "P90 forecast")
    return CycleDecision(at, (loop.lift(floor, at),), ())


def test_pending_pods_raise_pool_floor_in_one_cycle(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    fake_kube.seed(sb.gpu_pod("llm-a", 4, pending_since=clock.now - pd.Timedelta(seconds=45)))
    fake_kube.seed(sb.gpu_pod("llm-b", 4, pending_since=clock.now - pd.Timedelta(seconds=40)))
    loop = fast_loop(sb.settings(PENDING), kube_api, clock)

    outcome = loop.run_once(clock.now)

    assert desired_nodes(fake_kube) == 2
    assert [(f.name, f.desired, f.rule) for f in outcome.raised] == [(sb.POOL, 2, RULE_REACTIVE)]
    assert [r.status for r in outcome.results] == ["changed"]
    report = outcome.reports[0]
    assert report.status == "raised"
    assert report.value == 8


def test_floor_stays_when_pods_are_scheduled(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    fake_kube.seed(sb.gpu_pod("llm-a", 8, pending_since=clock.now - pd.Timedelta(seconds=60)))
    loop = fast_loop(sb.settings(PENDING), kube_api, clock)
    loop.run_once(clock.now)
    assert desired_nodes(fake_kube) == 2

    fake_kube.seed(b.node("cloud-1", sb.POOL, gpus=8))
    fake_kube.mutate("v1", "pods", "llm-a", b.NAMESPACE, lambda pod: sb.schedule(pod, "cloud-1"))
    writes = len(fake_kube.writes())
    outcome = loop.run_once(clock.advance(15))

    assert outcome.raised == ()
    assert outcome.reports[0].status == "below"
    assert len(fake_kube.writes()) == writes
    assert desired_nodes(fake_kube) == 2


def test_forecast_policy_lowers_only_after_window(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    settings = sb.settings(PENDING)
    window = settings.policy.stabilization_window_seconds
    seed_cluster(fake_kube)
    fake_kube.seed(sb.gpu_pod("llm-a", 8, pending_since=clock.now - pd.Timedelta(seconds=60)))
    loop = fast_loop(settings, kube_api, clock)
    raised_at = clock.now
    loop.run_once(raised_at)
    fake_kube.seed(b.node("cloud-1", sb.POOL, gpus=8))
    fake_kube.mutate("v1", "pods", "llm-a", b.NAMESPACE, lambda pod: sb.schedule(pod, "cloud-1"))

    inside = clock.advance(window - 60)
    held = loop.actuator.apply(forecast_decision(loop, inside, nodes=1, current=2))
    assert desired_nodes(fake_kube) == 2
    assert held[0].floor.rule == RULE_REACTIVE
    assert "stabilization window" in held[0].floor.reason

    after = clock.advance(120)
    lowered = loop.actuator.apply(forecast_decision(loop, after, nodes=1, current=2))
    assert desired_nodes(fake_kube) == 1
    assert lowered[0].floor.rule == "forecast"


def test_new_pending_pods_wait_for_hysteresis(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    fake_kube.seed(sb.gpu_pod("llm-a", 8, pending_since=clock.now))
    loop = fast_loop(sb.settings(PENDING), kube_api, clock)

    first = loop.run_once(clock.now)
    assert first.reports[0].status == "holding"
    assert desired_nodes(fake_kube) == 1

    second = loop.run_once(clock.advance(30))
    assert second.reports[0].status == "raised"
    assert desired_nodes(fake_kube) == 2


def test_booting_node_covers_pending_pod(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, desired=2)
    fake_kube.seed(b.node("cloud-1", sb.POOL, gpus=0, created=clock.now, ready=False))
    fake_kube.seed(sb.gpu_pod("llm-a", 8, pending_since=clock.now - pd.Timedelta(seconds=60)))
    loop = fast_loop(sb.settings(PENDING), kube_api, clock)

    outcome = loop.run_once(clock.now)

    assert outcome.reports[0].status == "at_floor"
    assert outcome.raised == ()
    assert desired_nodes(fake_kube) == 2


def test_pods_of_other_pools_are_not_counted(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    long_ago = clock.now - pd.Timedelta(seconds=60)
    other = {"peakcast.io/pool": "onprem-h100"}
    fake_kube.seed(sb.gpu_pod("other", 8, pending_since=long_ago, selector=other))
    fake_kube.seed(sb.gpu_pod("cpu-only", 0, pending_since=long_ago))
    loop = fast_loop(sb.settings(PENDING), kube_api, clock)

    outcome = loop.run_once(clock.now)

    assert outcome.reports[0].value == 0
    assert desired_nodes(fake_kube) == 1


def test_raise_is_capped_at_max_nodes(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    long_ago = clock.now - pd.Timedelta(seconds=60)
    for index in range(20):
        fake_kube.seed(sb.gpu_pod(f"llm-{index}", 8, pending_since=long_ago))
    loop = fast_loop(sb.settings(PENDING), kube_api, clock)

    outcome = loop.run_once(clock.now)

    assert outcome.raised[0].desired == 12
    assert desired_nodes(fake_kube) == 12


def test_forbidden_pod_list_changes_nothing(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    fake_kube.seed(sb.gpu_pod("llm-a", 8, pending_since=clock.now - pd.Timedelta(seconds=60)))
    fake_kube.deny("list", "pods")
    loop = fast_loop(sb.settings(PENDING), kube_api, clock)

    outcome = loop.run_once(clock.now)

    assert outcome.reports[0].status == "unreadable"
    assert "HTTP 403" in outcome.reports[0].message
    assert fake_kube.writes() == []
    assert desired_nodes(fake_kube) == 1


def test_api_server_down_changes_nothing(clock: b.FakeClock) -> None:
    settings = sb.settings(PENDING)
    api = build_api_client(host=f"http://127.0.0.1:{free_port()}")
    api.configuration.retries = 0
    try:
        loop = fast_loop(settings, api, clock)
        outcome = loop.run_once(clock.now)
    finally:
        api.close()

    assert outcome.reports[0].status == "unreadable"
    assert outcome.raised == ()
    assert outcome.results == ()
